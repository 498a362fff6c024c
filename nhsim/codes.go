package nhsim

import "paysaga/nh"

// Result codes the simulator answers with. Only 00000 and A0017 are NH's; the refusal codes
// are the project's own (NH does not publish them) and the client never depends on them. The
// table is repeated in the package comment and in docs/nh.md; a test keeps them in step.
const (
	CodeOK               = nh.RpcdOK
	CodeInProgress       = nh.RpcdInProgress
	CodeMissingField     = "E0001"
	CodeInvalidField     = "E0002"
	CodeWrongIscd        = "E0003"
	CodeWrongToken       = "E0004"
	CodeDuplicateIsTuno  = "E0005"
	CodeWrongAPI         = "E0006"
	CodeInsufficient     = "E1001"
	CodeUnknownFin       = "E1002"
	CodeNotForWithdraw   = "E1003"
	CodeOverLimit        = "E1004"
	CodeUnknownAccount   = "E1005"
	CodeBirthMismatch    = "E1006"
	CodeUnknownRgno      = "E1007"
	CodeWrongBank        = "E1008"
	CodeBadPeriod        = "E1009"
	CodeOriginalMismatch = "E1010"
	CodeForcedDecline    = "E9999"
)

// Code is one row of the result-code table.
type Code struct {
	Rpcd    string `json:"rpcd"`
	Rsms    string `json:"rsms"`
	Meaning string `json:"meaning"`
}

// Codes is the result-code table, the one place the simulator's messages come from.
var Codes = []Code{
	{CodeOK, "정상처리 되었습니다.", "success"},
	{CodeInProgress, "핀어카운트 발급 처리중입니다.", "fin-account issuance still in progress (NH's code)"},
	{CodeMissingField, "필수 입력값이 누락되었습니다.", "a required field is missing or empty"},
	{CodeInvalidField, "입력값이 올바르지 않습니다.", "a field has a wrong length, format, digit or date, or is not a string"},
	{CodeWrongIscd, "기관코드가 올바르지 않습니다.", "Iscd is not the simulator's"},
	{CodeWrongToken, "인증정보가 올바르지 않습니다.", "AccessToken is not the simulator's"},
	{CodeDuplicateIsTuno, "중복된 기관거래고유번호입니다. 다시 확인바랍니다.", "IsTuno already used on this Tsymd (NH's message)"},
	{CodeWrongAPI, "API명이 올바르지 않습니다.", "Header.ApiNm differs from the URL"},
	{CodeInsufficient, "잔액이 부족합니다.", "the paying account holds less than Tram"},
	{CodeUnknownFin, "등록되지 않은 핀어카운트입니다.", "no such fin account (or not issued yet)"},
	{CodeNotForWithdraw, "출금이체 등록이 되지 않은 핀어카운트입니다.", "DrawingTransfer from a fin account opened with DrtrRgyn=N"},
	{CodeOverLimit, "이체한도를 초과하였습니다.", "Tram over the per-transfer limit"},
	{CodeUnknownAccount, "계좌정보가 존재하지 않습니다.", "no account with this Bncd and Acno"},
	{CodeBirthMismatch, "생년월일이 일치하지 않습니다.", "BrdtBrno differs from the holder's"},
	{CodeUnknownRgno, "등록번호가 존재하지 않습니다.", "CheckOpenFinAccountDirect with an unknown Rgno"},
	{CodeWrongBank, "은행코드가 올바르지 않습니다.", "Bncd not allowed for this call (NH code on an other-bank call or the reverse)"},
	{CodeBadPeriod, "조회기간이 올바르지 않습니다.", "history period reversed, longer than 3 months or older than a year"},
	{CodeOriginalMismatch, "원거래 정보가 일치하지 않습니다.", "CheckOn… names an original of another kind, account or amount"},
	{CodeForcedDecline, "처리중 오류가 발생하였습니다.", "forced decline injected by a fault (default code)"},
}

var messages = func() map[string]string {
	m := make(map[string]string, len(Codes))
	for _, c := range Codes {
		m[c.Rpcd] = c.Rsms
	}
	return m
}()

// Message returns the Rsms of rpcd; codes outside the table (a forced decline may use any)
// get the forced-decline message.
func Message(rpcd string) string {
	if m, ok := messages[rpcd]; ok {
		return m
	}
	return messages[CodeForcedDecline]
}
