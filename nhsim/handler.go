package nhsim

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"paysaga/nh"
)

// maxRequest bounds a request body; NH's largest request is a few hundred bytes.
const maxRequest = 64 << 10

// Handler serves the bank's API at POST /{ApiNm}.nh and the admin API under /admin/.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{call}", s.serveCall)
	s.adminRoutes(mux)
	return mux
}

// request is a decoded call: the header and the call's own fields, all strings.
type request struct {
	api    string
	header map[string]string
	fields map[string]string
}

func (r *request) get(name string) string { return r.fields[name] }

// answer is what processing decided.
type answer struct {
	code   string
	fields map[string]any
}

func refuse(code string) answer { return answer{code: code} }

func ok(fields map[string]any) answer { return answer{code: CodeOK, fields: fields} }

func (s *Sim) serveCall(w http.ResponseWriter, r *http.Request) {
	api, isCall := strings.CutSuffix(r.PathValue("call"), ".nh")
	if !isCall || !slices.Contains(nh.APIs, api) {
		http.NotFound(w, r)
		return
	}
	s.count(api, func(st *CallStats) { st.Requests++ })
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		http.Error(w, "request too large or unreadable", http.StatusBadRequest)
		return
	}
	req, code := decodeRequest(api, body)
	if code == "" {
		code = s.checkHeader(req)
	}
	if code != "" {
		s.respond(w, req, refuse(code))
		return
	}
	key := req.header["Tsymd"] + req.header["IsTuno"]
	if !s.claim(key, req) {
		s.respond(w, req, refuse(CodeDuplicateIsTuno))
		return
	}

	p := s.roll(api)
	s.countFaults(api, p)
	if p.latency > 0 && !s.wait(p.latency) {
		s.settle(key, reqNotExecuted)
		drop(w)
		return
	}
	switch p.before {
	case FaultHTTP500:
		s.settle(key, reqNotExecuted)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	case FaultDrop:
		s.settle(key, reqNotExecuted)
		drop(w)
		return
	case FaultDecline:
		s.settle(key, reqNotExecuted)
		s.respond(w, req, refuse(p.declineCode))
		return
	}

	a := s.process(key, req)

	if p.slow > 0 && !s.wait(p.slow) {
		drop(w)
		return
	}
	switch p.after {
	case FaultLostResponse:
		drop(w)
		return
	case FaultLostResponse500:
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	s.respond(w, req, a)
}

// wait sleeps for d unless the simulator is closed first.
func (s *Sim) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// drop closes the connection without an answer. Behind a server that cannot hand the
// connection over (HTTP/2, a recorder), aborting the handler has the same effect.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// decodeRequest reads the envelope strictly, as the bank would: an object with a Header
// object, every value a string.
func decodeRequest(api string, body []byte) (*request, string) {
	req := &request{api: api, header: map[string]string{}, fields: map[string]string{}}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		return req, CodeInvalidField
	}
	code := ""
	for k, raw := range top {
		if k == "Header" {
			var h map[string]json.RawMessage
			if json.Unmarshal(raw, &h) != nil || h == nil {
				code = CodeInvalidField
				continue
			}
			for hk, hv := range h {
				var v string
				if json.Unmarshal(hv, &v) != nil {
					code = CodeInvalidField
					continue
				}
				req.header[hk] = v
			}
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			code = CodeInvalidField
			continue
		}
		req.fields[k] = v
	}
	if _, has := top["Header"]; !has {
		return req, CodeMissingField
	}
	return req, code
}

// checkHeader validates the header: presence, then who is calling, then formats.
func (s *Sim) checkHeader(req *request) string {
	h := req.header
	for _, name := range []string{"ApiNm", "Tsymd", "Trtm", "Iscd", "FintechApsno", "ApiSvcCd", "IsTuno", "AccessToken"} {
		if h[name] == "" {
			return CodeMissingField
		}
	}
	switch {
	case h["ApiNm"] != req.api:
		return CodeWrongAPI
	case h["Iscd"] != s.cfg.Iscd:
		return CodeWrongIscd
	case subtle.ConstantTimeCompare([]byte(h["AccessToken"]), []byte(s.cfg.AccessToken)) != 1:
		return CodeWrongToken
	case !validDate(h["Tsymd"]), !validTime(h["Trtm"]), len(h["FintechApsno"]) != 3,
		len(h["ApiSvcCd"]) > 20, !digits(h["IsTuno"], 1, 20):
		return CodeInvalidField
	}
	return ""
}

// claim records (Tsymd, IsTuno) as in flight, or reports that it was used before.
func (s *Sim) claim(key string, req *request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.seen[key]; dup {
		return false
	}
	sr := &seenReq{api: req.api, state: reqInFlight}
	if nh.MoneyMoving(req.api) {
		sr.fin = req.get("FinAcno")
		sr.to = AccountID{req.get("Bncd"), req.get("Acno")}
		sr.tram, _ = nh.ParseAmount(req.get("Tram"))
	}
	s.seen[key] = sr
	return true
}

func (s *Sim) settle(key string, st reqState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[key].state = st
}

// process runs the call against the ledger, atomically with recording whether it executed.
func (s *Sim) process(key string, req *request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	var a answer
	switch req.api {
	case nh.APIOpenFinAccountDirect:
		a = s.openFinAccount(req, now)
	case nh.APICheckOpenFinAccountDirect:
		a = s.checkOpenFinAccount(req, now)
	case nh.APIDrawingTransfer:
		a = s.drawingTransfer(req, now)
	case nh.APIReceivedTransferFinAccount, nh.APIReceivedTransferAccountNumber, nh.APIReceivedTransferOtherBank:
		a = s.receivedTransfer(req, now)
	case nh.APICheckOnDrawingTransfer, nh.APICheckOnReceivedTransfer:
		a = s.checkOn(req)
	case nh.APIInquireBalance:
		a = s.inquireBalance(req, now)
	case nh.APIInquireDepositorAccountNumber, nh.APIInquireDepositorOtherBank:
		a = s.inquireDepositor(req)
	case nh.APIInquireTransactionHistory:
		a = s.inquireHistory(req, now)
	}
	if a.code == CodeOK {
		s.seen[key].state = reqExecuted
	} else {
		s.seen[key].state = reqNotExecuted
	}
	return a
}

func (s *Sim) countFaults(api string, p plan) {
	if p == (plan{}) {
		return
	}
	s.count(api, func(st *CallStats) {
		if p.latency > 0 {
			st.Faults[FaultLatency]++
		}
		if p.slow > 0 {
			st.Faults[FaultSlowResponse]++
		}
		if p.before != "" {
			st.Faults[p.before]++
		}
		if p.after != "" {
			st.Faults[p.after]++
		}
	})
}

func (s *Sim) respond(w http.ResponseWriter, req *request, a answer) {
	s.count(req.api, func(st *CallStats) { st.Answered[a.code]++ })
	h := map[string]string{"Rpcd": a.code, "Rsms": Message(a.code)}
	for _, name := range []string{"ApiNm", "Tsymd", "Trtm", "Iscd", "FintechApsno", "ApiSvcCd", "IsTuno"} {
		if v, ok := req.header[name]; ok {
			h[name] = v
		}
	}
	body := make(map[string]any, len(a.fields)+1)
	for k, v := range a.fields {
		body[k] = v
	}
	body["Header"] = h
	out, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(out)
}
