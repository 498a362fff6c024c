package nh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is the envelope header. Requests carry AccessToken; answers echo the rest and add
// Rpcd and Rsms.
type Header struct {
	ApiNm        string `json:"ApiNm"`
	Tsymd        string `json:"Tsymd"`
	Trtm         string `json:"Trtm"`
	Iscd         string `json:"Iscd"`
	FintechApsno string `json:"FintechApsno"`
	ApiSvcCd     string `json:"ApiSvcCd"`
	IsTuno       string `json:"IsTuno"`
	AccessToken  string `json:"AccessToken,omitempty"`
	Rpcd         string `json:"Rpcd,omitempty"`
	Rsms         string `json:"Rsms,omitempty"`
}

// Ref returns the (Tsymd, IsTuno) the header carries.
func (h Header) Ref() Ref { return Ref{Tsymd: h.Tsymd, IsTuno: h.IsTuno} }

// encodeRequest builds the body: the header plus the call's fields at the top level, every
// value a string.
func encodeRequest(h Header, fields map[string]string) ([]byte, error) {
	body := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		body[k] = v
	}
	body["Header"] = h
	return json.Marshal(body)
}

// response is a decoded answer. Keys are normalised (trimmed, lower case) because NH's
// documents disagree on their spelling; look fields up with get.
type response struct {
	Header  Header
	hasRpcd bool
	fields  fieldMap
	records []fieldMap
}

func (r *response) get(name string) string { return r.fields.get(name) }

func normKey(k string) string { return strings.ToLower(strings.TrimSpace(k)) }

var errNoRpcd = errors.New("answer has no Rpcd")

// decodeResponse decodes an answer tolerantly: key case and stray spaces are ignored, values
// may be strings or bare numbers, header fields missing from "Header" are looked for at the top
// level. It fails when the body is not a JSON object or has no Rpcd: a missing Rpcd is never
// success. Its errors never quote the body, which may hold account data.
func decodeResponse(body []byte) (*response, error) {
	top, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	r := &response{fields: make(fieldMap, len(top))}
	var header fieldMap
	for k, raw := range top {
		switch normKey(k) {
		case "header":
			if header != nil {
				return nil, errors.New("answer has two headers")
			}
			obj, err := decodeObject(raw)
			if err != nil {
				return nil, fmt.Errorf("header: %w", err)
			}
			header = make(fieldMap, len(obj))
			for hk, hv := range obj {
				s, ok := scalar(hv)
				if !ok {
					return nil, errors.New("header value is not a string")
				}
				header.put(hk, s)
			}
		case "rec":
			if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
				continue
			}
			var list []json.RawMessage
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, errors.New("REC is not a list")
			}
			for _, item := range list {
				obj, err := decodeObject(item)
				if err != nil {
					return nil, fmt.Errorf("REC item: %w", err)
				}
				rec := make(fieldMap, len(obj))
				for rk, rv := range obj {
					if s, ok := scalar(rv); ok {
						rec.put(rk, s)
					}
				}
				r.records = append(r.records, rec)
			}
		default:
			if s, ok := scalar(raw); ok {
				r.fields.put(k, s)
			}
		}
	}
	if header == nil {
		header = r.fields
	}
	h := header.get
	r.Header = Header{
		ApiNm: h("ApiNm"), Tsymd: h("Tsymd"), Trtm: h("Trtm"), Iscd: h("Iscd"),
		FintechApsno: h("FintechApsno"), ApiSvcCd: h("ApiSvcCd"), IsTuno: h("IsTuno"),
		Rpcd: h("Rpcd"), Rsms: h("Rsms"),
	}
	_, r.hasRpcd = header[normKey("Rpcd")]
	if !r.hasRpcd || r.Header.Rpcd == "" {
		return nil, errNoRpcd
	}
	return r, nil
}

// fieldMap holds values under normalised keys, remembering the original spelling so that
// collisions resolve the same way every time.
type fieldMap map[string]field

type field struct{ val, key string }

func (m fieldMap) get(name string) string { return m[normKey(name)].val }

// put stores v under the normalised key k. When two spellings of one key collide ("Rsms" and
// "Rsms "), a non-empty value beats an empty one, and otherwise the smallest original
// spelling wins, so that the result never depends on map iteration order.
func (m fieldMap) put(k, v string) {
	nk := normKey(k)
	old, exists := m[nk]
	if !exists || (old.val == "" && v != "") || (v != "" && k < old.key) {
		m[nk] = field{val: v, key: k}
	}
}

func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	// Some gateways prefix UTF-8 bodies with a byte-order mark.
	b = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(b), []byte("\xef\xbb\xbf")))
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		// json's messages name at most one character and an offset, never a value.
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return m, nil
}

// scalar returns the text of a string, number, boolean or null value, trimmed of spaces that
// fixed-width bank fields are often padded with.
func scalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return strings.TrimSpace(s), true
	case '{', '[':
		return "", false
	case 'n':
		return "", true
	}
	return string(raw), true
}

// ParseAmount parses an amount in won as the bank writes it: possibly zero-padded, possibly
// with a sign (an overdrawn balance), possibly with a fraction that must be zero
// ("0000000000010000.00" is 10000).
func ParseAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if intPart == "" || !isDigits(intPart) || (hasFrac && (frac == "" || strings.Trim(frac, "0") != "")) {
		return 0, errors.New("not an amount in won")
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		return 0, nil
	}
	if len(intPart) > 18 {
		return 0, errors.New("amount out of range")
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, errors.New("amount out of range")
	}
	if neg {
		n = -n
	}
	return n, nil
}

// FormatAmount writes an amount the way requests carry it.
func FormatAmount(n int64) string { return strconv.FormatInt(n, 10) }
