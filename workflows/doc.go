// Package workflows holds the Temporal workflows of the engine — the sagas that move money —
// and nothing else: only deterministic code lives here (checked by workflowcheck in CI). The
// steps they run are in package activities.
//
// Versioning discipline: workflow histories recorded in testdata/ are replayed by the tests. Any
// change that could alter the commands a workflow emits (a new or removed activity, timer,
// marker or search-attribute upsert, a different order) goes behind workflow.GetVersion with a
// new change ID, and a new recording is added next to the old ones, which must keep replaying.
package workflows
