package entity

import (
	"errors"
	"fmt"
)

// ErrorKind classifies an error so that callers (the server, the CLI) can
// answer it the right way without parsing messages.
type ErrorKind string

// The error kinds. The server maps each to one HTTP status in one place.
const (
	KindInvalid      ErrorKind = "invalid"
	KindNotFound     ErrorKind = "not_found"
	KindConflict     ErrorKind = "conflict"
	KindPrecondition ErrorKind = "precondition_failed"
	KindUnauthorized ErrorKind = "unauthorized"
	KindForbidden    ErrorKind = "forbidden"
	KindTooLarge     ErrorKind = "too_large"
	// KindUnsupportedMedia is a request body of a type the API does not
	// take (anything but JSON).
	KindUnsupportedMedia ErrorKind = "unsupported_media_type"
	KindInternal         ErrorKind = "internal"
	// KindTooExpensive is a request that ran into a bound on the work or
	// the answer one request may take (a query's deadline, an answer's
	// size): the same request will fail again; a narrower one may not.
	KindTooExpensive ErrorKind = "too_expensive"
	// KindTooManyRequests is a caller that has as many heavy requests
	// running or waiting as it may: retry when one of them is done.
	KindTooManyRequests ErrorKind = "too_many_requests"
	// KindUnavailable is a server too busy to take the request now (its
	// queue is full, or writes kept a dry run from finishing): retry
	// later. A detail "retry_after" (whole seconds) says when.
	KindUnavailable ErrorKind = "unavailable"
)

// The reasons: finer codes an error of a kind may carry (Error.Code, the
// API's "reason"). A client branches on the kind first (the API's "code")
// and on the reason when it needs the precise failure.
const (
	// ReasonExhausted: a block, rack or name manager has nothing left to
	// hand out (conflict).
	ReasonExhausted = "exhausted"
	// ReasonInsufficient: a query allocation found fewer entities than
	// asked for; Details["available"] says how many (conflict).
	ReasonInsufficient = "insufficient"
	// ReasonInvariant: the request would leave the inventory breaking one
	// of its rules; Details["rule"] names it (conflict).
	ReasonInvariant = "invariant"
	// ReasonDryRunPreempted: real writes kept a dry run from finishing
	// before its deadline (unavailable).
	ReasonDryRunPreempted = "dry_run_preempted"
	// ReasonBackupNotFound: no finished backup has the name (not_found).
	ReasonBackupNotFound = "backup_not_found"
	// ReasonBackupExists: a file in the backup directory has the name
	// asked for (conflict).
	ReasonBackupExists = "backup_exists"
)

// RetryAfter is the detail of a KindTooManyRequests or KindUnavailable
// error that says, in whole seconds, when to try again.
const RetryAfter = "retry_after"

// Error is the project's error value: a kind, an optional finer code
// ("exhausted", "insufficient"), a message meant for the user, and for
// input that has one, the position of the mistake in it.
type Error struct {
	Kind    ErrorKind
	Code    string
	Message string
	// Line and Column locate the mistake in the text it came from (a query,
	// an inventory file), 1-based; zero otherwise.
	Line, Column int
	// Details carries structured context for the client (candidates, counts).
	Details map[string]any
	// Err is the underlying cause, never shown to clients of the server.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Kind == KindInternal {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// WithCode sets the finer error code and returns e.
func (e *Error) WithCode(code string) *Error {
	e.Code = code
	return e
}

// With adds one detail and returns e.
func (e *Error) With(key string, value any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = value
	return e
}

// Internal wraps an unexpected failure; its message names the operation only.
func Internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: KindInternal, Message: op, Err: err}
}

// KindOf returns the kind of err, KindInternal for errors that are not *Error.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k ErrorKind) bool { return err != nil && KindOf(err) == k }
