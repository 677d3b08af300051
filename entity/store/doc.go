// Package store keeps the inventory (the types of package entity) in one
// SQLite file, with the full history of every change and reads as of any
// past change.
//
// # One writer
//
// The file is opened here and nowhere else (file.go). It has two pools and
// neither leaves this package:
//
//   - the write pool has exactly one connection, which the Store holds for
//     its whole life. Store.Update (and Store.DryRun, which rolls back) is
//     the only way to it: one transaction at a time, each BEGIN IMMEDIATE,
//     each checked against every rule (invariants.go) just before COMMIT.
//     A Tx has the write methods; what it keeps in memory until commit
//     (new versions, new blocks' free-space runs, its row cache) stays
//     coherent because nothing else can touch the transaction.
//   - the read pool's connections are opened read-only (mode=ro,
//     query_only). Readers get them only through Reader (one statement at
//     a time) or View (one snapshot, read methods only: a write in a read
//     does not compile). In WAL mode readers never block the writer, nor
//     it them.
//
// The query compiler (package query) builds its SQL against this schema and
// runs it through a Reader: the store's, a View, or Tx.Reader inside a
// write (query allocation), which writes the transaction's in-memory state
// first so that the SQL sees everything the transaction has done.
//
// # Files
//
// tx.go is the transaction engine; attrs.go, lifecycle.go, connect.go,
// ipalloc.go, rackalloc.go, names.go and batch.go are what a transaction
// does; invariants.go and inv_*.go are the rules; read.go, view.go,
// hydrate.go, merged.go, locate.go and lookup.go are reads; backup.go
// (making and restoring backups) with catalogue.go (the backup directory:
// names, listing, pruning, deletion), tokens.go and idempotency.go are the
// rest of what the file holds.
package store
