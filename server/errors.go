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
	var se *query.SyntaxError
	if errors.As(err, &se) {
		s.writeBody(w, r, http.StatusBadRequest, entity.ErrorBody{Error: entity.ErrorDetail{Code: codeQuerySyntax, Message: err.Error(),
			Position: positionOf(se.Line, se.Column), RequestID: requestIDOf(r)}})
		return
	}
	var e *entity.Error
	if !errors.As(err, &e) || e.Kind == entity.KindInternal || statusOf[e.Kind] == 0 {
		if r.Context().Err() != nil {
			// The client went away or the server is shutting down; nobody
			// reads this answer, but the access log records it.
			s.log.Info("request canceled", "request_id", requestIDOf(r), "err", err)
			s.writeErrorStatus(w, r, http.StatusServiceUnavailable, &entity.Error{Kind: entity.KindInternal, Message: "the request was canceled before it finished"})
			return
		}
		s.log.Error("internal error", "request_id", requestIDOf(r), "method", r.Method, "path", r.URL.Path, "err", err.Error())
		s.writeErrorStatus(w, r, http.StatusInternalServerError, &entity.Error{Kind: entity.KindInternal,
			Message: "internal error; the server log has the details under request id " + requestIDOf(r)})
		return
	}
	// Wrapping adds context meant for the user ("attribute #2: ..."); for
	// these kinds the whole chain is user-facing text.
	msg := err.Error()
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
	s.writeErrorStatus(w, r, statusOf[e.Kind], &entity.Error{Kind: e.Kind, Code: e.Code, Message: msg, Line: e.Line, Column: e.Column, Details: e.Details})
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
