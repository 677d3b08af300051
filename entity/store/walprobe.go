//go:build unix

package store

import (
	"encoding/binary"
	"os"
	"syscall"
)

// walProbe is a read-only map of a WAL database's -shm file, the WAL
// index, whose header says whether anything was committed (tokenCache).
type walProbe struct {
	mem []byte
}

// walMark is what the WAL index header says of the last commit: iChange,
// mxFrame and the salts of both copies of the header.
type walMark [2][4]uint32

// walIndexVersion is the iVersion of the WAL index format this reads.
const walIndexVersion = 3007000

// openWALProbe maps the first page of path (a database's -shm file); nil
// when it cannot be mapped or is not a WAL index of the known format.
func openWALProbe(path string) *walProbe {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close() // the map outlives the descriptor
	fi, err := f.Stat()
	if err != nil || fi.Size() < 4096 {
		return nil
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	p := &walProbe{mem: mem}
	if _, ok := p.mark(); !ok {
		p.close()
		return nil
	}
	return p
}

// mark reads the header's commit marks; ok is false when the header is
// not one of the known format (the cache is then not trusted).
func (p *walProbe) mark() (walMark, bool) {
	var m walMark
	if p == nil || len(p.mem) < 96 {
		return m, false
	}
	for i := range 2 {
		h := p.mem[48*i : 48*i+48]
		if binary.NativeEndian.Uint32(h[0:4]) != walIndexVersion {
			return m, false
		}
		// iChange, mxFrame, aSalt[0], aSalt[1].
		m[i] = [4]uint32{binary.NativeEndian.Uint32(h[8:12]), binary.NativeEndian.Uint32(h[16:20]),
			binary.NativeEndian.Uint32(h[32:36]), binary.NativeEndian.Uint32(h[36:40])}
	}
	return m, true
}

func (p *walProbe) close() {
	if p != nil && p.mem != nil {
		syscall.Munmap(p.mem)
		p.mem = nil
	}
}
