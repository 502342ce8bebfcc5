package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/route"
)

// MaxBody is the largest request body the native API reads.
const MaxBody = 1 << 20

// maxDepth bounds JSON nesting: no request of this API needs more than a few
// levels, and deep nesting is a cheap way to make a parser work hard.
const maxDepth = 16

// decode reads one JSON value of at most MaxBody bytes into v. Unknown
// fields, duplicate keys, trailing data and wrong types are refused with
// invalid_request; a body over the cap with body_too_large.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	if err != nil {
		if me, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return quota.Errorf(quota.CodeTooLarge, "the body is larger than %d bytes", me.Limit)
		}
		return quota.Errorf(quota.CodeInvalid, "reading the body failed")
	}
	if !utf8.Valid(body) {
		return quota.Errorf(quota.CodeInvalid, "the body is not valid UTF-8")
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}

// checkJSON walks the token stream once to refuse what encoding/json would
// silently accept: duplicate keys (last one wins there), trailing values and
// excessive depth.
func checkJSON(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return quota.Errorf(quota.CodeInvalid, "the body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // in an object: the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return decodeError(err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.object {
					top.expect = true
				}
				if len(stack) >= maxDepth {
					return quota.Errorf(quota.CodeInvalid, "the JSON is nested deeper than %d levels", maxDepth)
				}
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, expect: t == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if err := quota.CheckText("a string of the body", t, MaxBody); err != nil {
				return err
			}
			if top != nil && top.object && top.expect {
				if top.keys[t] {
					return quota.Errorf(quota.CodeInvalid, "duplicate key %q", truncate(t, 64))
				}
				top.keys[t] = true
				top.expect = false
				continue
			}
			if top != nil && top.object {
				top.expect = true
			}
		default:
			if top != nil && top.object {
				top.expect = true
			}
		}
		if len(stack) == 0 && dec.More() {
			return quota.Errorf(quota.CodeInvalid, "the body holds more than one JSON value")
		}
	}
	return nil
}

func decodeError(err error) error {
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := e.Field
		if field == "" {
			field = "the body"
		}
		return quota.Errorf(quota.CodeInvalid, "%s: expected %s, got JSON %s", field, typeName(e.Type.String()), e.Value)
	}
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return quota.Errorf(quota.CodeInvalid, "malformed JSON at byte %d: %v", e.Offset, e)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return quota.Errorf(quota.CodeInvalid, "unknown field %s", truncate(f, 70))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return quota.Errorf(quota.CodeInvalid, "malformed JSON: unexpected end of the body")
	}
	return quota.Errorf(quota.CodeInvalid, "malformed JSON: %s", truncate(msg, 100))
}

func typeName(t string) string {
	switch t {
	case "int64", "int":
		return "an integer in range"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	}
	if strings.HasPrefix(t, "map") || strings.HasPrefix(t, "client.") || strings.HasPrefix(t, "struct") {
		return "an object"
	}
	if strings.HasPrefix(t, "[]") {
		return "an array"
	}
	return t
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// respond writes v as JSON with status.
func respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// statusOf maps each domain code to its HTTP status: the one table of it.
var statusOf = map[quota.Code]int{
	quota.CodeInvalid:            http.StatusBadRequest,
	quota.CodeNotFound:           http.StatusNotFound,
	quota.CodeConflict:           http.StatusConflict,
	quota.CodeQuotaExceeded:      http.StatusConflict,
	quota.CodeLimitViolation:     http.StatusUnprocessableEntity,
	quota.CodeOutsideRange:       http.StatusUnprocessableEntity,
	quota.CodeBelowUsage:         http.StatusUnprocessableEntity,
	quota.CodeGenerationMismatch: http.StatusPreconditionFailed,
	quota.CodeUnauthorized:       http.StatusUnauthorized,
	quota.CodeForbidden:          http.StatusForbidden,
	quota.CodeTooLarge:           http.StatusRequestEntityTooLarge,
	quota.CodeTooMany:            http.StatusTooManyRequests,
	quota.CodeOverloaded:         http.StatusServiceUnavailable,
	quota.CodeUnavailable:        http.StatusServiceUnavailable,
	quota.CodeOutcomeUnknown:     http.StatusServiceUnavailable,
	quota.CodeInternal:           http.StatusInternalServerError,
	quota.CodeUnknownParameter:   http.StatusBadRequest,
	quota.CodeReplayTooLong:      http.StatusUnprocessableEntity,
	quota.CodeBeforeRetention:    http.StatusGone,
	quota.CodeEventsPruned:       http.StatusGone,
	quota.CodeParentNotFound:     http.StatusUnprocessableEntity,
	quota.CodeParentCycle:        http.StatusConflict,
	quota.CodeTreeTooDeep:        http.StatusConflict,
	quota.CodeHasChildren:        http.StatusConflict,
	route.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
}

// problem is the server's side of client.Problem: violations keep the
// domain's encoding, which leaves out the fields of the other shape.
type problem struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Status     int               `json:"status"`
	Detail     string            `json:"detail,omitempty"`
	Code       quota.Code        `json:"code"`
	Violations []quota.Violation `json:"violations,omitempty"`
	Operation  *int              `json:"operation,omitempty"`
}

// Fail writes err as application/problem+json. Errors without a domain code
// are logged here, once, and shown to the caller as a generic message.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	qe, ok := errors.AsType[*quota.Error](err)
	if !ok {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		qe = quota.Errorf(quota.CodeInternal, "an internal error occurred; it has been logged")
	} else if qe.Err != nil {
		log.Warn("request not served", "method", r.Method, "path", r.URL.Path, "code", qe.Code, "err", qe.Err)
	}
	status := statusOf[qe.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type:       "https://allot.dev/problems/" + strings.ReplaceAll(string(qe.Code), "_", "-"),
		Title:      http.StatusText(status),
		Status:     status,
		Detail:     qe.Message,
		Code:       qe.Code,
		Violations: qe.Violations,
		Operation:  qe.Operation,
	})
}

// queryInt reads an optional integer query parameter within [min, max].
func queryInt(r *http.Request, name string, def, min, max int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < min || v > max {
		return 0, quota.Errorf(quota.CodeInvalid, "%s must be an integer from %d to %d", name, min, max)
	}
	return v, nil
}

// queryBool reads an optional boolean query parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, quota.Errorf(quota.CodeInvalid, "%s must be true or false", name)
	}
	return v, nil
}

// ifMatch reads the If-Match header as a generation: 0 when absent.
func ifMatch(r *http.Request) (int64, error) {
	s := strings.TrimSpace(r.Header.Get("If-Match"))
	if s == "" {
		return 0, nil
	}
	s = strings.Trim(strings.TrimPrefix(s, "W/"), `"`)
	g, err := strconv.ParseInt(s, 10, 64)
	if err != nil || g <= 0 {
		return 0, quota.Errorf(quota.CodeInvalid, "If-Match must be a consumer generation, a positive integer")
	}
	return g, nil
}

func etag(gen int64) string { return fmt.Sprintf(`"%d"`, gen) }
