package nhsim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"paysaga/nh"
)

// The admin API, for tests and operators of a development setup. Every body is JSON.
//
//	GET    /admin/ledger                 → Ledger {fintech, accounts, total}
//	GET    /admin/accounts               → [Account]
//	POST   /admin/accounts               Account {bank_code, account_number, holder, birth_date, balance} → 201 Account
//	GET    /admin/accounts/{bncd}/{acno} → Account
//	POST   /admin/finaccounts            {bank_code, account_number, withdrawal} → 201 {fin_account}
//	GET    /admin/transfers              → [Transfer]
//	GET    /admin/faults                 → {API: [FaultJSON]}
//	POST   /admin/faults                 FaultJSON with "api", or {"spec": "API=kind:p[:arg],…"} → 204
//	DELETE /admin/faults                 → 204, every fault cleared
//	DELETE /admin/faults/{api}           → 204, the faults of one API (or *) cleared
//	GET    /admin/stats                  → {API: {requests, answered: {Rpcd: n}, faults: {kind: n}}}
//	GET    /admin/codes                  → [Code], the result-code table
//
// Errors are {"error": "…"} with 400 or 404.

// FaultJSON is a Fault as the admin API reads and writes it: latency as a Go duration string.
type FaultJSON struct {
	API         string    `json:"api,omitempty"`
	Kind        FaultKind `json:"kind"`
	Probability float64   `json:"probability"`
	Latency     string    `json:"latency,omitempty"`
	Rpcd        string    `json:"rpcd,omitempty"`
	Spec        string    `json:"spec,omitempty"`
}

func (s *Sim) adminRoutes(mux *http.ServeMux) {
	handle := func(pattern string, h func(*http.Request) (int, any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if s.cfg.AdminToken != "" &&
				subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+s.cfg.AdminToken)) != 1 {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
				return
			}
			status, v, err := h(r)
			if err != nil {
				writeJSON(w, status, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, status, v)
		})
	}
	handle("GET /admin/ledger", func(*http.Request) (int, any, error) { return http.StatusOK, s.Ledger(), nil })
	handle("GET /admin/accounts", func(*http.Request) (int, any, error) { return http.StatusOK, s.Ledger().Accounts, nil })
	handle("POST /admin/accounts", func(r *http.Request) (int, any, error) {
		var a Account
		if err := readJSON(r, &a); err != nil {
			return http.StatusBadRequest, nil, err
		}
		created, err := s.CreateAccount(a)
		if err != nil {
			return http.StatusBadRequest, nil, err
		}
		return http.StatusCreated, created, nil
	})
	handle("GET /admin/accounts/{bncd}/{acno}", func(r *http.Request) (int, any, error) {
		a, found := s.Account(r.PathValue("bncd"), r.PathValue("acno"))
		if !found {
			return http.StatusNotFound, nil, errors.New("no such account")
		}
		return http.StatusOK, a, nil
	})
	handle("POST /admin/finaccounts", func(r *http.Request) (int, any, error) {
		var in struct {
			AccountID
			Withdrawal bool `json:"withdrawal"`
		}
		if err := readJSON(r, &in); err != nil {
			return http.StatusBadRequest, nil, err
		}
		fin, err := s.RegisterFinAccount(in.Bncd, in.Acno, in.Withdrawal)
		if err != nil {
			return http.StatusNotFound, nil, err
		}
		return http.StatusCreated, map[string]string{"fin_account": fin}, nil
	})
	handle("GET /admin/transfers", func(*http.Request) (int, any, error) {
		t := s.Transfers()
		if t == nil {
			t = []Transfer{}
		}
		return http.StatusOK, t, nil
	})
	handle("GET /admin/faults", func(*http.Request) (int, any, error) {
		out := map[string][]FaultJSON{}
		for api, list := range s.Faults() {
			for _, f := range list {
				out[api] = append(out[api], faultJSON(f))
			}
		}
		return http.StatusOK, out, nil
	})
	handle("POST /admin/faults", func(r *http.Request) (int, any, error) {
		var in FaultJSON
		if err := readJSON(r, &in); err != nil {
			return http.StatusBadRequest, nil, err
		}
		faults := map[string][]Fault{}
		if in.Spec != "" {
			var err error
			if faults, err = ParseFaults(in.Spec); err != nil {
				return http.StatusBadRequest, nil, err
			}
		} else {
			f := Fault{Kind: in.Kind, Probability: in.Probability, Rpcd: in.Rpcd}
			if in.Latency != "" {
				d, err := time.ParseDuration(in.Latency)
				if err != nil {
					return http.StatusBadRequest, nil, errors.New("latency must be a duration such as 50ms")
				}
				f.Latency = d
			}
			faults[in.API] = []Fault{f}
		}
		// Check everything before changing anything, so that a bad entry sets nothing.
		for api, list := range faults {
			if api != AllAPIs && !slices.Contains(nh.APIs, api) {
				return http.StatusBadRequest, nil, errors.New("unknown API")
			}
			for _, f := range list {
				if err := f.validate(); err != nil {
					return http.StatusBadRequest, nil, err
				}
			}
		}
		for api, list := range faults {
			for _, f := range list {
				_ = s.SetFault(api, f)
			}
		}
		return http.StatusNoContent, nil, nil
	})
	handle("DELETE /admin/faults", func(*http.Request) (int, any, error) {
		s.ClearFaults()
		return http.StatusNoContent, nil, nil
	})
	handle("DELETE /admin/faults/{api}", func(r *http.Request) (int, any, error) {
		s.ClearFault(r.PathValue("api"))
		return http.StatusNoContent, nil, nil
	})
	handle("GET /admin/stats", func(*http.Request) (int, any, error) { return http.StatusOK, s.Stats(), nil })
	handle("GET /admin/codes", func(*http.Request) (int, any, error) { return http.StatusOK, Codes, nil })
}

func faultJSON(f Fault) FaultJSON {
	out := FaultJSON{Kind: f.Kind, Probability: f.Probability, Rpcd: f.Rpcd}
	if f.Latency > 0 {
		out.Latency = f.Latency.String()
	}
	return out
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("body must be a JSON object with known fields")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
