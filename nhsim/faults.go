package nhsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"paysaga/nh"
)

// FaultKind is one way the bank fails.
type FaultKind string

const (
	// FaultLatency delays the answer by Fault.Latency before processing. Processing goes on
	// even when the caller gives up, as at a real bank.
	FaultLatency FaultKind = "latency"
	// FaultHTTP500 answers HTTP 500 before processing: nothing executed.
	FaultHTTP500 FaultKind = "http_500"
	// FaultDrop closes the connection before processing: nothing executed.
	FaultDrop FaultKind = "drop"
	// FaultDecline refuses the request with Fault.Rpcd (CodeForcedDecline when empty) before
	// processing: nothing executed.
	FaultDecline FaultKind = "decline"
	// FaultLostResponse processes (commits a transfer), then closes the connection: the
	// ambiguous case a CheckOn… call must resolve.
	FaultLostResponse FaultKind = "lost_response"
	// FaultLostResponse500 processes, then answers HTTP 500.
	FaultLostResponse500 FaultKind = "lost_response_500"
	// FaultSlowResponse processes, then delays the answer by Fault.Latency, so that a client
	// with a shorter timeout gives up on a request that executed.
	FaultSlowResponse FaultKind = "slow_response"
)

// FaultKinds lists every kind.
var FaultKinds = []FaultKind{FaultLatency, FaultHTTP500, FaultDrop, FaultDecline, FaultLostResponse, FaultLostResponse500, FaultSlowResponse}

// AllAPIs is the API name under which a fault applies to every call.
const AllAPIs = "*"

// Fault makes a call fail with some probability.
type Fault struct {
	Kind        FaultKind
	Probability float64       // 0 < p ≤ 1
	Latency     time.Duration // FaultLatency, FaultSlowResponse
	Rpcd        string        // FaultDecline
}

func (f Fault) validate() error {
	if !slices.Contains(FaultKinds, f.Kind) {
		return fmt.Errorf("nhsim: unknown fault kind %q", f.Kind)
	}
	if !(f.Probability > 0 && f.Probability <= 1) {
		return fmt.Errorf("nhsim: fault probability must be in (0, 1]")
	}
	if (f.Kind == FaultLatency || f.Kind == FaultSlowResponse) && f.Latency <= 0 {
		return fmt.Errorf("nhsim: %s needs a positive latency", f.Kind)
	}
	if f.Kind == FaultDecline && f.Rpcd != "" && (len(f.Rpcd) != 5 || f.Rpcd == nh.RpcdOK || f.Rpcd == nh.RpcdInProgress) {
		return fmt.Errorf("nhsim: a forced decline needs a 5-character code other than %s and %s", nh.RpcdOK, nh.RpcdInProgress)
	}
	return nil
}

// String writes f in the flag syntax ParseFaults reads (without the API).
func (f Fault) String() string {
	s := string(f.Kind) + ":" + strconv.FormatFloat(f.Probability, 'g', -1, 64)
	switch f.Kind {
	case FaultLatency, FaultSlowResponse:
		s += ":" + f.Latency.String()
	case FaultDecline:
		if f.Rpcd != "" {
			s += ":" + f.Rpcd
		}
	}
	return s
}

// ParseFaults reads faults from a flag value: entries separated by commas or semicolons, each
// API=kind:probability[:argument], the argument being a duration for latency and slow_response
// and a result code for decline. API is a call name or * for every call. Example:
//
//	DrawingTransfer=lost_response:0.2,*=latency:0.1:50ms,ReceivedTransferOtherBank=decline:0.05:E1001
func ParseFaults(spec string) (map[string][]Fault, error) {
	out := map[string][]Fault{}
	for _, entry := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ';' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		api, rest, ok := strings.Cut(entry, "=")
		api = strings.TrimSpace(api)
		if !ok || (api != AllAPIs && !slices.Contains(nh.APIs, api)) {
			return nil, fmt.Errorf("nhsim: fault %q: want API=kind:probability[:argument] with a known API or *", entry)
		}
		parts := strings.Split(rest, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("nhsim: fault %q: want kind:probability[:argument]", entry)
		}
		f := Fault{Kind: FaultKind(strings.TrimSpace(parts[0]))}
		p, err := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("nhsim: fault %q: bad probability", entry)
		}
		f.Probability = p
		if len(parts) == 3 {
			arg := strings.TrimSpace(parts[2])
			switch f.Kind {
			case FaultLatency, FaultSlowResponse:
				if f.Latency, err = time.ParseDuration(arg); err != nil {
					return nil, fmt.Errorf("nhsim: fault %q: bad duration", entry)
				}
			case FaultDecline:
				f.Rpcd = arg
			default:
				return nil, fmt.Errorf("nhsim: fault %q: %s takes no argument", entry, f.Kind)
			}
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("%w (in %q)", err, entry)
		}
		out[api] = upsertFault(out[api], f)
	}
	return out, nil
}

// upsertFault replaces the fault of the same kind, so that one API has at most one of each.
func upsertFault(list []Fault, f Fault) []Fault {
	for i := range list {
		if list[i].Kind == f.Kind {
			list[i] = f
			return list
		}
	}
	return append(list, f)
}

// SetFault adds f to api (a call name or AllAPIs), replacing a fault of the same kind.
func (s *Sim) SetFault(api string, f Fault) error {
	if api != AllAPIs && !slices.Contains(nh.APIs, api) {
		return fmt.Errorf("nhsim: unknown API %q", api)
	}
	if err := f.validate(); err != nil {
		return err
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults[api] = upsertFault(slices.Clone(s.faults[api]), f)
	return nil
}

// ClearFault removes every fault of api (a call name or AllAPIs).
func (s *Sim) ClearFault(api string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	delete(s.faults, api)
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = map[string][]Fault{}
}

// Faults returns the faults in force, by API.
func (s *Sim) Faults() map[string][]Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	out := make(map[string][]Fault, len(s.faults))
	for api, list := range s.faults {
		out[api] = slices.Clone(list)
	}
	return out
}

// plan is what the faults decided for one request.
type plan struct {
	latency     time.Duration // before processing
	before      FaultKind     // FaultHTTP500, FaultDrop or FaultDecline; "" to process
	declineCode string
	after       FaultKind     // FaultLostResponse, FaultLostResponse500; "" to answer
	slow        time.Duration // after processing
}

// roll draws the faults of one request of api. Each fault is drawn independently, the API's
// own before the "*" ones, in a fixed order so that a seed replays the same run.
func (s *Sim) roll(api string) plan {
	var p plan
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if len(s.faults) == 0 {
		return p
	}
	for _, key := range [2]string{api, AllAPIs} {
		for _, f := range s.faults[key] {
			if s.rng.Float64() >= f.Probability {
				continue
			}
			switch f.Kind {
			case FaultLatency:
				if p.latency == 0 {
					p.latency = f.Latency
				}
			case FaultSlowResponse:
				if p.slow == 0 {
					p.slow = f.Latency
				}
			case FaultHTTP500, FaultDrop, FaultDecline:
				if p.before == "" {
					p.before, p.declineCode = f.Kind, f.Rpcd
				}
			case FaultLostResponse, FaultLostResponse500:
				if p.after == "" {
					p.after = f.Kind
				}
			}
		}
	}
	if p.before == FaultDecline && p.declineCode == "" {
		p.declineCode = CodeForcedDecline
	}
	return p
}
