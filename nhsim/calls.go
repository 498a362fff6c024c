package nhsim

import (
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"paysaga/nh"
)

// The call processors below run with s.mu held; each validates its fields, then acts.

func (s *Sim) openFinAccount(req *request, now time.Time) answer {
	drtr, birth, bncd, acno := req.get("DrtrRgyn"), req.get("BrdtBrno"), req.get("Bncd"), req.get("Acno")
	if code := requireFields(req, "DrtrRgyn", "BrdtBrno", "Bncd", "Acno"); code != "" {
		return refuse(code)
	}
	if (drtr != "Y" && drtr != "N") || !validBirth(birth) || !digits(bncd, 3, 3) || !digits(acno, 6, 16) {
		return refuse(CodeInvalidField)
	}
	a, found := s.accounts[AccountID{bncd, acno}]
	if !found {
		return refuse(CodeUnknownAccount)
	}
	if a.Birth != birth {
		return refuse(CodeBirthMismatch)
	}
	fin := s.newFin(a, drtr == "Y", now.Add(s.cfg.IssueDelay))
	s.nextRgno++
	rgno := fmt.Sprintf("%012d", s.nextRgno)
	s.regs[rgno] = &registration{fin: fin, birth: birth}
	return ok(map[string]any{"Rgno": rgno})
}

func (s *Sim) checkOpenFinAccount(req *request, now time.Time) answer {
	if code := requireFields(req, "Rgno", "BrdtBrno"); code != "" {
		return refuse(code)
	}
	rgno, birth := req.get("Rgno"), req.get("BrdtBrno")
	if !digits(rgno, 1, 20) || !validBirth(birth) {
		return refuse(CodeInvalidField)
	}
	reg, found := s.regs[rgno]
	if !found {
		return refuse(CodeUnknownRgno)
	}
	if reg.birth != birth {
		return refuse(CodeBirthMismatch)
	}
	if now.Before(reg.fin.issueAt) {
		return refuse(CodeInProgress)
	}
	return ok(map[string]any{"FinAcno": reg.fin.finAcno, "RgsnYmd": nh.Today(reg.fin.issueAt)})
}

// issuedFin finds a fin account usable now.
func (s *Sim) issuedFin(finAcno string, now time.Time) (*finAccount, bool) {
	f, found := s.fins[finAcno]
	if !found || now.Before(f.issueAt) {
		return nil, false
	}
	return f, true
}

func (s *Sim) drawingTransfer(req *request, now time.Time) answer {
	if code := requireFields(req, "FinAcno", "Tram"); code != "" {
		return refuse(code)
	}
	tram, code := s.checkTransferFields(req)
	if code != "" {
		return refuse(code)
	}
	f, found := s.issuedFin(req.get("FinAcno"), now)
	if !found {
		return refuse(CodeUnknownFin)
	}
	if !f.withdrawal {
		return refuse(CodeNotForWithdraw)
	}
	if f.acct.Balance < tram {
		return refuse(CodeInsufficient)
	}
	text := req.get("DractOtlt")
	s.move(req, f.acct, s.fintech, tram, text, text, now)
	return ok(map[string]any{"FinAcno": f.finAcno, "RgsnYmd": nh.Today(f.issueAt)})
}

func (s *Sim) receivedTransfer(req *request, now time.Time) answer {
	var to *account
	switch req.api {
	case nh.APIReceivedTransferFinAccount:
		if code := requireFields(req, "FinAcno", "Tram"); code != "" {
			return refuse(code)
		}
		if _, code := s.checkTransferFields(req); code != "" {
			return refuse(code)
		}
		f, found := s.issuedFin(req.get("FinAcno"), now)
		if !found {
			return refuse(CodeUnknownFin)
		}
		to = f.acct
	default:
		if code := requireFields(req, "Bncd", "Acno", "Tram"); code != "" {
			return refuse(code)
		}
		bncd, acno := req.get("Bncd"), req.get("Acno")
		if !digits(bncd, 3, 3) || !digits(acno, 6, 16) {
			return refuse(CodeInvalidField)
		}
		if _, code := s.checkTransferFields(req); code != "" {
			return refuse(code)
		}
		if nh.IsNHBank(bncd) != (req.api == nh.APIReceivedTransferAccountNumber) {
			return refuse(CodeWrongBank)
		}
		a, found := s.accounts[AccountID{bncd, acno}]
		if !found {
			return refuse(CodeUnknownAccount)
		}
		to = a
	}
	tram, _ := nh.ParseAmount(req.get("Tram"))
	if s.fintech.Balance < tram {
		return refuse(CodeInsufficient)
	}
	s.move(req, s.fintech, to, tram, req.get("DractOtlt"), req.get("MractOtlt"), now)
	return ok(nil)
}

// checkTransferFields validates what every transfer carries: the amount (digits only, no
// leading zero, at most 15 digits, within the limit), the fin account's shape and the passbook
// texts.
func (s *Sim) checkTransferFields(req *request) (int64, string) {
	tramText := req.get("Tram")
	if !digits(tramText, 1, 15) || tramText[0] == '0' {
		return 0, CodeInvalidField
	}
	tram, _ := strconv.ParseInt(tramText, 10, 64)
	if fin, has := req.fields["FinAcno"]; has && !alnum(fin, 1, 30) {
		return 0, CodeInvalidField
	}
	if utf8.RuneCountInString(req.get("DractOtlt")) > 25 || utf8.RuneCountInString(req.get("MractOtlt")) > 25 {
		return 0, CodeInvalidField
	}
	if tram > s.cfg.TransferLimit {
		return 0, CodeOverLimit
	}
	return tram, ""
}

// move is the only code that changes balances after an account is created: what leaves one
// account enters the other in the same critical section.
func (s *Sim) move(req *request, from, to *account, amount int64, fromText, toText string, now time.Time) {
	s.nextTuno++
	tuno := fmt.Sprintf("%016d", s.nextTuno)
	from.Balance -= amount
	to.Balance += amount
	from.history = append(from.history, historyRow{at: now, amount: amount, after: from.Balance, summary: summaryOf(req.api), tuno: tuno, text: fromText})
	to.history = append(to.history, historyRow{at: now, deposit: true, amount: amount, after: to.Balance, summary: summaryOf(req.api), tuno: tuno, text: toText})
	s.executed = append(s.executed, Transfer{
		API: req.api, Tsymd: req.header["Tsymd"], IsTuno: req.header["IsTuno"],
		From: AccountID{from.Bncd, from.Acno}, To: AccountID{to.Bncd, to.Acno},
		Amount: amount, Tuno: tuno, At: now,
	})
}

func summaryOf(api string) string {
	switch api {
	case nh.APIDrawingTransfer:
		return "출금이체"
	case nh.APIReceivedTransferOtherBank:
		return "타행입금"
	}
	return "입금이체"
}

// checkOn answers from the simulator's own record of what it executed.
func (s *Sim) checkOn(req *request) answer {
	byFin := req.get("FinAcno") != ""
	if req.api == nh.APICheckOnDrawingTransfer || byFin {
		if code := requireFields(req, "FinAcno", "Tram", "OrtrYmd", "OrtrIsTuno"); code != "" {
			return refuse(code)
		}
		if !alnum(req.get("FinAcno"), 1, 30) {
			return refuse(CodeInvalidField)
		}
	} else {
		if code := requireFields(req, "Bncd", "Acno", "Tram", "OrtrYmd", "OrtrIsTuno"); code != "" {
			return refuse(code)
		}
		if !digits(req.get("Bncd"), 3, 3) || !digits(req.get("Acno"), 6, 16) {
			return refuse(CodeInvalidField)
		}
	}
	tramText, ymd, isTuno := req.get("Tram"), req.get("OrtrYmd"), req.get("OrtrIsTuno")
	if !digits(tramText, 1, 15) || tramText[0] == '0' || !validDate(ymd) || !digits(isTuno, 1, 20) {
		return refuse(CodeInvalidField)
	}
	orig, found := s.seen[ymd+isTuno]
	if !found {
		return ok(map[string]any{"Pcrs": nh.PcrsNotExecuted})
	}
	tram, _ := strconv.ParseInt(tramText, 10, 64)
	var kindOK, accountOK bool
	if req.api == nh.APICheckOnDrawingTransfer {
		kindOK = orig.api == nh.APIDrawingTransfer
	} else {
		kindOK = slices.Contains([]string{nh.APIReceivedTransferFinAccount, nh.APIReceivedTransferAccountNumber, nh.APIReceivedTransferOtherBank}, orig.api)
	}
	if byFin {
		accountOK = orig.fin == req.get("FinAcno")
	} else {
		accountOK = orig.to == AccountID{req.get("Bncd"), req.get("Acno")}
	}
	if !kindOK || !accountOK || orig.tram != tram {
		return refuse(CodeOriginalMismatch)
	}
	pcrs := nh.PcrsNotExecuted
	switch orig.state {
	case reqExecuted:
		pcrs = nh.PcrsExecuted
	case reqInFlight:
		pcrs = nh.PcrsInProgress
	}
	return ok(map[string]any{"Pcrs": pcrs})
}

func (s *Sim) inquireBalance(req *request, now time.Time) answer {
	if code := requireFields(req, "FinAcno"); code != "" {
		return refuse(code)
	}
	if !alnum(req.get("FinAcno"), 1, 30) {
		return refuse(CodeInvalidField)
	}
	f, found := s.issuedFin(req.get("FinAcno"), now)
	if !found {
		return refuse(CodeUnknownFin)
	}
	bal := strconv.FormatInt(f.acct.Balance, 10)
	return ok(map[string]any{"FinAcno": f.finAcno, "Ldbl": bal, "RlpmAbamt": bal})
}

func (s *Sim) inquireDepositor(req *request) answer {
	if code := requireFields(req, "Bncd", "Acno"); code != "" {
		return refuse(code)
	}
	bncd, acno := req.get("Bncd"), req.get("Acno")
	if !digits(bncd, 3, 3) || !digits(acno, 6, 16) {
		return refuse(CodeInvalidField)
	}
	if nh.IsNHBank(bncd) != (req.api == nh.APIInquireDepositorAccountNumber) {
		return refuse(CodeWrongBank)
	}
	a, found := s.accounts[AccountID{bncd, acno}]
	if !found {
		return refuse(CodeUnknownAccount)
	}
	return ok(map[string]any{"Dpnm": a.Holder})
}

func (s *Sim) inquireHistory(req *request, now time.Time) answer {
	var a *account
	if req.get("FinAcno") != "" {
		if !alnum(req.get("FinAcno"), 1, 30) {
			return refuse(CodeInvalidField)
		}
		f, found := s.issuedFin(req.get("FinAcno"), now)
		if !found {
			return refuse(CodeUnknownFin)
		}
		a = f.acct
	} else {
		if code := requireFields(req, "Bncd", "Acno"); code != "" {
			return refuse(code)
		}
		if !digits(req.get("Bncd"), 3, 3) || !digits(req.get("Acno"), 6, 16) {
			return refuse(CodeInvalidField)
		}
		found := false
		if a, found = s.accounts[AccountID{req.get("Bncd"), req.get("Acno")}]; !found {
			return refuse(CodeUnknownAccount)
		}
	}
	if code := requireFields(req, "Insymd", "Ineymd", "TrnsDsnc", "Lnsq", "PageNo", "Dmcnt"); code != "" {
		return refuse(code)
	}
	from, err1 := nh.ParseTsymd(req.get("Insymd"))
	to, err2 := nh.ParseTsymd(req.get("Ineymd"))
	kind, order := req.get("TrnsDsnc"), req.get("Lnsq")
	pageNo, err3 := strconv.Atoi(req.get("PageNo"))
	size, err4 := strconv.Atoi(req.get("Dmcnt"))
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !validDate(req.get("Insymd")) || !validDate(req.get("Ineymd")) ||
		!slices.Contains([]string{"A", "M", "D"}, kind) || (order != "ASC" && order != "DESC") ||
		!digits(req.get("PageNo"), 1, 5) || pageNo < 1 || !digits(req.get("Dmcnt"), 1, 3) || size < 1 || size > 100 {
		return refuse(CodeInvalidField)
	}
	today, _ := nh.ParseTsymd(nh.Today(now))
	if to.Before(from) || to.After(from.AddDate(0, 3, 0)) || from.Before(today.AddDate(-1, 0, 0)) {
		return refuse(CodeBadPeriod)
	}
	end := to.AddDate(0, 0, 1)
	var rows []historyRow
	for _, h := range a.history {
		if h.at.Before(from) || !h.at.Before(end) || (kind == "M" && !h.deposit) || (kind == "D" && h.deposit) {
			continue
		}
		rows = append(rows, h)
	}
	if order == "DESC" {
		slices.Reverse(rows)
	}
	start := min((pageNo-1)*size, len(rows))
	stop := min(start+size, len(rows))
	rec := make([]map[string]string, 0, stop-start)
	for _, h := range rows[start:stop] {
		dsnc := "3"
		if h.deposit {
			dsnc = "1"
		}
		rec = append(rec, map[string]string{
			"Trdd": nh.Today(h.at), "Txtm": nh.Trtm(h.at), "MnrcDrotDsnc": dsnc,
			"Tram": strconv.FormatInt(h.amount, 10), "AftrBlnc": strconv.FormatInt(h.after, 10),
			"Smr": h.summary, "Ccyn": "0", "Tuno": h.tuno, "BnprCntn": h.text,
		})
	}
	more := "N"
	if stop < len(rows) {
		more = "Y"
	}
	return ok(map[string]any{"CtntDataYn": more, "Iqtcnt": strconv.Itoa(len(rec)), "REC": rec})
}

func requireFields(req *request, names ...string) string {
	for _, n := range names {
		if req.fields[n] == "" {
			return CodeMissingField
		}
	}
	return ""
}

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func alnum(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// validDate accepts a real calendar date YYYYMMDD (20260230 is refused).
func validDate(s string) bool {
	if !digits(s, 8, 8) {
		return false
	}
	_, err := time.Parse("20060102", s)
	return err == nil
}

// validTime accepts HHMMSS on a 24-hour clock.
func validTime(s string) bool {
	if !digits(s, 6, 6) {
		return false
	}
	_, err := time.Parse("150405", s)
	return err == nil
}

// validBirth accepts a birth date YYYYMMDD or a 10-digit business number.
func validBirth(s string) bool { return validDate(s) || digits(s, 10, 10) }
