package entity

import (
	"time"

	"github.com/clusto/clusto/drivers"
)

// The request and answer types of drivers, tokens and backups (see
// api.go).

// DriverList is the answer of GET /drivers: every driver, by name.
type DriverList struct {
	Drivers []*drivers.Driver `json:"drivers"`
}

// DriverView is the answer of GET /drivers/{name}: the driver, with its
// ports spelt out in PortList.
type DriverView struct {
	*drivers.Driver
	PortList []drivers.Port `json:"port_list"`
}

// DriversReloaded is the answer of POST /drivers/reload: the names of the
// drivers the server knows now.
type DriversReloaded struct {
	Drivers []string `json:"drivers"`
}

// TokenRequest is the body of POST /tokens.
type TokenRequest struct {
	Name string `json:"name"`
	// Role is read, write or admin.
	Role string `json:"role"`
}

// NewToken is the answer of POST /tokens: the token and its secret, which
// appears in this answer and nowhere else.
type NewToken struct {
	Token
	Secret string `json:"token"`
}

// TokenList is the answer of GET /tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// Revoked is the answer of DELETE /tokens/{name}.
type Revoked struct {
	Revoked string `json:"revoked"`
}

// TokenAudit is a page of the token audit list (GET /tokens/audit). Next
// is the ?since= of the page after, as in Changes.
type TokenAudit struct {
	Events []TokenEvent `json:"events"`
	Next   int64        `json:"next"`
}

// BackupRequest is the optional body of POST /admin/backup.
type BackupRequest struct {
	// Name is the backup's file name in the server's backup directory:
	// letters, digits, '.', '_' and '-', not starting with '.' or '-';
	// empty for clusto-<UTC time>.db.
	Name string `json:"name,omitempty"`
}

// BackupAnswer describes a backup POST /admin/backup wrote into the
// backup directory. It names the file only: the directory is the server's
// configuration (--backup-dir).
type BackupAnswer struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Change is the newest change the snapshot holds: everything up to it
	// is in the file, nothing after it.
	Change  int64     `json:"change"`
	TookMS  int64     `json:"took_ms"`
	Created time.Time `json:"created"`
	// Pruned names the automatically named backups removed after this one
	// to keep the newest N (clustod serve --backup-keep).
	Pruned []string `json:"pruned,omitempty"`
}

// BackupFile is a finished backup in the backup directory: an item of
// BackupList, and the answer of DELETE /admin/backups/{name} (the file
// removed).
type BackupFile struct {
	Name     string    `json:"name"`
	Bytes    int64     `json:"bytes"`
	Modified time.Time `json:"modified"`
}

// BackupList is the answer of GET /admin/backups.
type BackupList struct {
	// Backups are newest first.
	Backups []BackupFile `json:"backups"`
	// Keep is how many automatically named backups the server keeps (0:
	// all).
	Keep int `json:"keep"`
}
