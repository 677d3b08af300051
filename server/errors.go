package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/query"
)

// statusOf is the one mapping from error kinds to HTTP statuses.
var statusOf = map[entity.ErrorKind]int{
	entity.KindInvalid:          http.StatusBadRequest,
	entity.KindUnauthorized:     http.StatusUnauthorized,
	entity.KindForbidden:        http.StatusForbidden,
	entity.KindNotFound:         http.StatusNotFound,
	entity.KindConflict:         http.StatusConflict,
	entity.KindPrecondition:     http.StatusPreconditionFailed,
	entity.KindTooLarge:         http.StatusRequestEntityTooLarge,
	entity.KindUnsupportedMedia: http.StatusUnsupportedMediaType,
	entity.KindInternal:         http.StatusInternalServerError,
	// The request is well formed but would take more than one request
	// may (a query's deadline, an answer's size).
	entity.KindTooExpensive:    http.StatusUnprocessableEntity,
	entity.KindTooManyRequests: http.StatusTooManyRequests,
	entity.KindUnavailable:     http.StatusServiceUnavailable,
}

// The reasons the server's own refusals carry (the entity package names
// those of the store's).
const (
	reasonCrossOrigin    = "cross_origin"
	reasonHostNotAllowed = "host_not_allowed"
	reasonBackupRunning  = "backup_running"
	reasonMaxAnswer      = "max-answer"
	reasonQueryTimeout   = "query-timeout"
	reasonDryRunTimeout  = "dry-run-timeout"
)

// codeQuerySyntax is the code of a query that does not parse
// (*query.SyntaxError): 400, with the position of the mistake.
const codeQuerySyntax = "query_syntax"

// retryAfterDefault is the Retry-After, in seconds, of a 429 or 503 whose
// error names none.
const retryAfterDefault = 1

// writeError answers err. An *entity.Error of a client-facing kind is shown
// as it is; anything else is an internal error, logged in full with the
// request id and answered with only that id, so that no Go or SQL text
// reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, e := s.explain(r, err)
	if e.Code == codeQuerySyntax {
		s.writeBody(w, r, status, entity.ErrorBody{Error: entity.ErrorDetail{Code: codeQuerySyntax, Message: e.Message,
			Position: positionOf(e.Line, e.Column), RequestID: requestIDOf(r)}})
		return
	}
	switch e.Kind {
	case entity.KindUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="clusto"`)
	case entity.KindTooManyRequests, entity.KindUnavailable:
		// Every refusal for load says when to come back.
		secs, ok := e.Details[entity.RetryAfter].(int)
		if !ok || secs < 1 {
			secs = retryAfterDefault
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	s.writeErrorStatus(w, r, status, e)
}

// explain is the one mapping of an error to what a client is told: its
// status and a user-facing error (the query syntax error's code is
// codeQuerySyntax). Internal errors are logged here, in full, with the
// request id, and told only that id. The JSON API writes the answer; the
// web UI shows it in a page.
func (s *Server) explain(r *http.Request, err error) (int, *entity.Error) {
	var se *query.SyntaxError
	if errors.As(err, &se) {
		return http.StatusBadRequest, &entity.Error{Kind: entity.KindInvalid, Code: codeQuerySyntax, Message: err.Error(), Line: se.Line, Column: se.Column}
	}
	var e *entity.Error
	if !errors.As(err, &e) || e.Kind == entity.KindInternal || statusOf[e.Kind] == 0 {
		if r.Context().Err() != nil {
			// The client went away or the server is shutting down; nobody
			// reads this answer, but the access log records it.
			s.log.Info("request canceled", "request_id", requestIDOf(r), "err", err)
			return http.StatusServiceUnavailable, &entity.Error{Kind: entity.KindInternal, Message: "the request was canceled before it finished"}
		}
		s.log.Error("internal error", "request_id", requestIDOf(r), "method", r.Method, "path", r.URL.Path, "err", err.Error())
		return http.StatusInternalServerError, &entity.Error{Kind: entity.KindInternal,
			Message: "internal error; the server log has the details under request id " + requestIDOf(r)}
	}
	// Wrapping adds context meant for the user ("attribute #2: ..."); for
	// these kinds the whole chain is user-facing text.
	return statusOf[e.Kind], &entity.Error{Kind: e.Kind, Code: e.Code, Message: err.Error(), Line: e.Line, Column: e.Column, Details: e.Details}
}

func (s *Server) writeErrorStatus(w http.ResponseWriter, r *http.Request, status int, e *entity.Error) {
	// code is always the kind, which fixes the status; reason is the finer
	// failure within it (exhausted, insufficient, invariant, ...).
	d := entity.ErrorDetail{Code: string(e.Kind), Message: e.Message, Reason: e.Code, Details: e.Details, Position: positionOf(e.Line, e.Column), RequestID: requestIDOf(r)}
	s.writeBody(w, r, status, entity.ErrorBody{Error: d})
}

// positionOf is the position of a mistake in a query or a file, or nil
// when there is none.
func positionOf(line, column int) *entity.Position {
	if line < 1 {
		return nil
	}
	return &entity.Position{Line: line, Column: column}
}
