// Package devserver holds the dynamic configuration paysaga gives Temporal's dev server
// (`temporal server start-dev`) beyond its defaults, for every stack that starts one: make run,
// the tests' stack, the benchmark and the chaos run.
package devserver

import (
	"sort"
	"strconv"
)

// TransferPollRPS is history.transferProcessorMaxPollRPS: how many times per second a history
// shard may read its transfer queue — the queue through which every workflow task and activity
// task reaches matching, hence a poller. The server's default, 20, is a per-shard figure for
// clusters of hundreds of shards; the dev server has one shard, so under 20 tasks/s the tasks
// wait for that read (a payment has three on its way to an answer: at 15 payments/s each waited
// 25–30 ms, 85 of the answer's 163 ms; docs/benchmarks.md). temporal-config/dynamicconfig.yaml
// sets the same for the cluster (deploy tests check they agree).
const TransferPollRPS = 200

// DynamicConfig is the dev server's dynamic configuration, key → value.
var DynamicConfig = map[string]string{
	// Eager activity execution is allowed on the server so that the benchmark can measure it
	// (`go run ./bench -eager 4`); the engine's workers do not ask for it (app.WorkerOptions).
	"system.enableActivityEagerExecution": "true",
	// One partition: with four, a task could wait in a partition no poller was on until a long
	// poll (60 s) returned (docs/benchmarks.md, 2026-12-02).
	"matching.numTaskqueueReadPartitions":  "1",
	"matching.numTaskqueueWritePartitions": "1",
	"history.transferProcessorMaxPollRPS":  strconv.Itoa(TransferPollRPS),
}

// Args returns DynamicConfig as `--dynamic-config-value KEY=VALUE` arguments, in key order.
func Args() []string {
	keys := make([]string, 0, len(DynamicConfig))
	for k := range DynamicConfig {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, "--dynamic-config-value", k+"="+DynamicConfig[k])
	}
	return args
}
