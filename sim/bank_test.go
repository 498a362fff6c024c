package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paysaga/nh"
)

// bankFault is what happens to one request on its way to the bank and back.
type bankFault string

const (
	faultNone bankFault = ""
	// fault500: the bank answers HTTP 500 before processing; nothing executed, but the client
	// cannot know that.
	fault500 bankFault = "5xx"
	// faultLost: the bank processes (a transfer commits), then the connection breaks.
	faultLost bankFault = "lost-after-commit"
	// faultLate: the connection breaks at once, and the request reaches the bank a moment
	// later (a slow network, a paused sender): a check right after the failure says "not
	// executed" for a transfer that is about to execute.
	faultLate bankFault = "late-delivery"
	// faultSlow: the bank processes, and its answer arrives after the client's timeout.
	faultSlow bankFault = "slow-answer"
	// faultHang: the bank processes, and the call hangs past the activity's start-to-close
	// timeout (the worker gives up on an activity that moved money).
	faultHang bankFault = "hang-past-activity-timeout"
	// faultInquiryDown: an inquiry (CheckOn…, depositor) during an inquiry outage: HTTP 503.
	faultInquiryDown bankFault = "inquiry-outage"
)

// bankRates are the per-mille chances of each fault per money-moving call (5xx also applies
// to inquiries).
type bankRates struct {
	P500, Lost, Late, Slow, Hang int
}

func (r bankRates) String() string {
	return fmt.Sprintf("5xx %d‰, lost %d‰, late %d‰, slow %d‰, hang %d‰", r.P500, r.Lost, r.Late, r.Slow, r.Hang)
}

// bankNet is the network between the engine and the simulated bank: an http.RoundTripper that
// serves requests with the simulator's handler in-process, and injects faults. Each fault is a
// function of the seed and of the call (API, account, amount, and how many such calls came
// before), not of the order in which concurrent activities happen to run, so that a seed
// replays the same faults.
type bankNet struct {
	handler http.Handler
	seed    uint64
	rates   bankRates
	// hangFor is how long a hanging call blocks (longer than the activity timeout); hangs
	// counts down the hangs a schedule may still have (they cost real time).
	hangFor time.Duration
	hangs   atomic.Int32
	// lateMax bounds how long (simulated) a late request takes to reach the bank: at most the
	// activity's start-to-close timeout, the deadline of the attempt that sent it.
	lateMax     time.Duration
	inquiryDown atomic.Bool
	// later runs f after d of simulated time (RegisterDelayedCallback).
	later func(d time.Duration, f func())
	tr    *trace

	mu    sync.Mutex
	calls map[string]int
	count map[bankFault]int
}

func moneyMoving(api string) bool {
	switch api {
	case nh.APIDrawingTransfer, nh.APIReceivedTransferFinAccount, nh.APIReceivedTransferAccountNumber, nh.APIReceivedTransferOtherBank:
		return true
	}
	return false
}

func inquiry(api string) bool {
	switch api {
	case nh.APICheckOnDrawingTransfer, nh.APICheckOnReceivedTransfer, nh.APIInquireDepositorAccountNumber, nh.APIInquireDepositorOtherBank:
		return true
	}
	return false
}

// envelope is the part of a request the network looks at to name the call.
type envelope struct {
	Header struct {
		ApiNm  string `json:"ApiNm"`
		IsTuno string `json:"IsTuno"`
	} `json:"Header"`
	FinAcno string `json:"FinAcno"`
	Bncd    string `json:"Bncd"`
	Acno    string `json:"Acno"`
	Tram    string `json:"Tram"`
}

func (n *bankNet) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	var env envelope
	_ = json.Unmarshal(body, &env)
	api := env.Header.ApiNm
	if api == "" {
		api = strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/"), ".nh")
	}
	key := api + "|" + env.FinAcno + env.Bncd + env.Acno + "|" + env.Tram
	n.mu.Lock()
	k := n.calls[key]
	n.calls[key]++
	n.mu.Unlock()

	fireInFlight(req.Context())
	fault := n.decide(api, key, k)
	if fault != faultNone {
		n.mu.Lock()
		n.count[fault]++
		n.mu.Unlock()
		n.tr.add("bank: %s %s (amount %s, call #%d)", api, fault, env.Tram, k+1)
	}
	// The request leaves this process: from here on a money-moving call may have moved money.
	if t := httptrace.ContextClientTrace(req.Context()); t != nil && t.WroteHeaders != nil {
		t.WroteHeaders()
	}
	switch fault {
	case fault500:
		return status(req, http.StatusInternalServerError), nil
	case faultInquiryDown:
		return status(req, http.StatusServiceUnavailable), nil
	case faultLost:
		n.serve(req, body)
		return nil, errors.New("read: connection reset by peer (injected after the bank processed the request)")
	case faultLate:
		d := time.Duration(1+hash(n.seed, "late-by", key, k)%uint64(n.lateMax/time.Millisecond)) * time.Millisecond
		n.later(d, func() {
			n.tr.add("bank: a late %s (amount %s, call #%d) reaches the bank", api, env.Tram, k+1)
			n.serve(req, body)
		})
		return nil, errors.New("write: broken pipe (injected; the request reaches the bank later)")
	case faultSlow:
		n.serve(req, body)
		<-req.Context().Done()
		return nil, req.Context().Err()
	case faultHang:
		res := n.serve(req, body)
		time.Sleep(n.hangFor)
		return res, nil
	}
	return n.serve(req, body), nil
}

func (n *bankNet) decide(api, key string, k int) bankFault {
	if inquiry(api) && n.inquiryDown.Load() {
		return faultInquiryDown
	}
	u := int(hash(n.seed, "bank-fault", key, k) % 1000)
	if u < n.rates.P500 {
		return fault500
	}
	if !moneyMoving(api) {
		return faultNone
	}
	u -= n.rates.P500
	for _, f := range []struct {
		p     int
		fault bankFault
	}{{n.rates.Lost, faultLost}, {n.rates.Late, faultLate}, {n.rates.Slow, faultSlow}, {n.rates.Hang, faultHang}} {
		if u < f.p {
			if f.fault == faultHang && n.hangs.Add(-1) < 0 {
				return faultNone
			}
			return f.fault
		}
		u -= f.p
	}
	return faultNone
}

// serve hands the request to the simulator, in this process.
func (n *bankNet) serve(orig *http.Request, body []byte) *http.Response {
	r := httptest.NewRequest(http.MethodPost, orig.URL.Path, bytes.NewReader(body))
	r.Header = orig.Header.Clone()
	rec := httptest.NewRecorder()
	n.handler.ServeHTTP(rec, r)
	res := rec.Result()
	res.Request = orig
	return res
}

func status(req *http.Request, code int) *http.Response {
	return &http.Response{
		StatusCode: code, Status: http.StatusText(code), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req,
	}
}
