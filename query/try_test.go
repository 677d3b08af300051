package query

import (
	"fmt"
	"testing"
)

func TestTry(t *testing.T) {
	for _, s := range []string{
		`driver:server and (attr:status,unallocated or attr:status,spare) in (driver:rack and attr:row,3)`,
		`driver:Server connected to name:rack002 and attr:status,unallocated`,
		`pool:web* or ip:10.0.0.0/8 or name:/^s[0-9]+$/ or name:rack0*`,
		`* contains attr:memory_gb>=64 connected to * via nic`,
	} {
		for _, at := range []int64{0, 7} {
			sql, args, err := Explain(s, Options{At: at})
			fmt.Println(sql, args, err)
		}
	}
}
