package entity

// BackupTempPrefix starts the names of the temporary files a backup is
// written to before it takes its final name. The leading dot keeps them out
// of a plain ls and out of the names the server accepts for a backup, so
// that a temporary file is never taken for a finished backup. One left
// behind (only a crash of the process can leave one) is safe to delete.
const BackupTempPrefix = ".clusto-tmp-"

// BackupInfo describes a backup file written by Store.Backup.
type BackupInfo struct {
	// Bytes is the size of the file.
	Bytes int64
	// SHA256 is the hex SHA-256 of the file, to check a copy of it against.
	SHA256 string
	// Change is the newest change the backup holds (0 for an empty
	// inventory), read from the backup itself: everything up to and
	// including it is in the file, nothing after it.
	Change int64
}
