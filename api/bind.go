package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"paysaga"
)

// validate checks the `binding:"…"` tags of request structs (the tag gin users already know),
// reporting fields by their JSON names. It is our own instance so that gin's global validator
// settings do not change how the API answers.
var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.SetTagName("binding")
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	return v
}()

// BindJSON decodes the request body into dst strictly and validates its `binding` tags. Every
// failure is an error Problem answers correctly, so handlers just do:
//
//	if err := api.BindJSON(c, &req); err != nil {
//		api.Problem(c, err)
//		return
//	}
//
// Refused: a Content-Type other than JSON (415), a body over the server's limit (413), an empty
// body, malformed JSON, a field the struct does not have, a value of the wrong type, anything
// after the JSON value, and failed `binding` rules (all 422, code "invalid", with `errors`
// naming the fields where known). Unknown fields are refused rather than ignored so that a
// client's typo ("ammount") is an error, not a silently different request.
func BindJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &httpError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMedia,
				detail: "the request body must be JSON (Content-Type: application/json)"}
		}
	}
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return paysaga.Errorf(paysaga.EINVALID, "the request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	// A second value (or garbage) after the first is a malformed request, not something to ignore.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return mbe
		}
		return paysaga.Errorf(paysaga.EINVALID, "the request body must hold a single JSON value")
	}
	if err := validate.Struct(dst); err != nil {
		var verrs validator.ValidationErrors
		if errors.As(err, &verrs) {
			return validationError(verrs)
		}
		var inv *validator.InvalidValidationError
		if errors.As(err, &inv) {
			return nil // dst is not a struct (a map, a slice): nothing to validate
		}
		return err
	}
	return nil
}

func decodeError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return mbe
	case errors.Is(err, io.EOF):
		return paysaga.Errorf(paysaga.EINVALID, "the request body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return paysaga.Errorf(paysaga.EINVALID, "the request body is not valid JSON: it ends too early")
	case errors.As(err, &se):
		return paysaga.Errorf(paysaga.EINVALID, "the request body is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return paysaga.Errorf(paysaga.EINVALID, "the request body must be a JSON %s", jsonKind(te.Type))
		}
		return &ValidationError{Message: "a field has the wrong type", Fields: []FieldError{{
			Field: field, Message: "must be " + jsonKind(te.Type) + ", not " + te.Value,
		}}}
	}
	// encoding/json has no typed error for an unknown field; its message is stable since Go 1.10.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &ValidationError{Message: "the request has a field this endpoint does not accept",
			Fields: []FieldError{{Field: name, Message: "unknown field"}}}
	}
	return paysaga.Errorf(paysaga.EINVALID, "the request body is not valid JSON")
}

// jsonKind names a Go type the way a client reading JSON would.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a " + t.String()
}

func validationError(verrs validator.ValidationErrors) error {
	fields := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		fields = append(fields, FieldError{Field: fieldPath(fe), Message: ruleMessage(fe)})
	}
	return &ValidationError{Message: "some fields are invalid", Fields: fields}
}

// fieldPath is the JSON path of the field without the top-level struct's name: "items[0].amount".
func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return fe.Field()
}

func ruleMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be an email address"
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "min", "gte":
		if fe.Kind() == reflect.String {
			return "must be at least " + fe.Param() + " characters long"
		}
		return "must be at least " + fe.Param()
	case "max", "lte":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters long"
		}
		return "must be at most " + fe.Param()
	case "gt":
		return "must be greater than " + fe.Param()
	case "lt":
		return "must be less than " + fe.Param()
	case "len":
		return "must have length " + fe.Param()
	}
	return fmt.Sprintf("fails the %q rule", fe.Tag())
}
