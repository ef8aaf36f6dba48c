// Package kallsyms resolves kernel text addresses (drop locations) to
// function names from /proc/kallsyms.
//
// It keeps only the names it was asked for. A kernel has 100k+ text
// symbols: held in memory (one string of all names, pointer-free entries)
// they were ~5 MB of the collector's live heap on every node, which the GC's
// target then grows by half again, where a node meets a few dozen drop
// locations. A read of /proc/kallsyms costs 30–50 ms of CPU; Resolve makes
// one for all the locations of a flush that are not named yet.
package kallsyms

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
)

const (
	// maxFuncSize bounds how far past the last known symbol an address may
	// lie and still be attributed to it.
	maxFuncSize = 1 << 16
	// maxNames bounds the names kept: drop locations are call sites, a
	// few dozen on a node; past this many the cache starts over.
	maxNames = 4096
)

// Table names kernel text addresses. It is not safe for concurrent use.
type Table struct {
	path   string
	hidden bool
	names  map[uint64]string // resolved addresses (hex when unresolvable)
	reads  int
}

// Load checks that a kallsyms file is readable. When kernel.kptr_restrict
// hides the addresses (all zero) the table is still usable, resolves
// nothing and reports Hidden.
func Load(path string) (*Table, error) {
	t := &Table{path: path, names: map[uint64]string{}}
	lines, zero := 0, 0
	err := t.scan(func(addr uint64, _ bool, _ []byte) {
		lines++
		if addr == 0 {
			zero++
		}
	})
	if err != nil {
		return nil, err
	}
	t.hidden = lines > 0 && zero == lines
	return t, nil
}

// scan calls fn for every line of the file with an address: whether the
// symbol is text (where code frees skbs: t, T, w, W) and its name without
// the module suffix ("name\t[module]": the function name is what users
// search for). name is valid during the call only.
func (t *Table) scan(fn func(addr uint64, text bool, name []byte)) error {
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("open kallsyms: %w", err)
	}
	defer f.Close()
	t.reads++
	if err := parse(f, fn); err != nil {
		return fmt.Errorf("read %s: %w", t.path, err)
	}
	return nil
}

func parse(r io.Reader, fn func(addr uint64, text bool, name []byte)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// "ffffffff81000000 T _stext" or "ffffffffc0201000 t name\t[module]"
		line := sc.Bytes()
		addrEnd := bytes.IndexByte(line, ' ')
		if addrEnd <= 0 || len(line) < addrEnd+4 {
			continue
		}
		addr, err := strconv.ParseUint(string(line[:addrEnd]), 16, 64)
		if err != nil {
			continue
		}
		var text bool
		switch line[addrEnd+1] {
		case 't', 'T', 'w', 'W':
			text = true
		}
		name := line[addrEnd+3:]
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name = name[:i]
		}
		fn(addr, text, name)
	}
	return sc.Err()
}

// Hidden reports that every address read as zero: kernel.kptr_restrict (or
// missing CAP_SYSLOG) hides them, so locations stay hexadecimal.
func (t *Table) Hidden() bool { return t.hidden }

// Reads is how many times the file was read, Load's included.
func (t *Table) Reads() int { return t.reads }

// target is an address being resolved: the greatest text symbol at or below
// it so far, and whether any text symbol lies above it.
type target struct {
	addr, best  uint64
	name        []byte
	found, more bool
}

// Resolve names the addresses not named yet, in one read of the file.
func (t *Table) Resolve(addrs []uint64) error {
	if t == nil || t.hidden {
		return nil
	}
	var want []target
	for _, a := range addrs {
		if _, ok := t.names[a]; ok || a == 0 {
			continue
		}
		dup := false
		for i := range want {
			dup = dup || want[i].addr == a
		}
		if !dup {
			want = append(want, target{addr: a})
		}
	}
	if len(want) == 0 {
		return nil
	}
	err := t.scan(func(addr uint64, text bool, name []byte) {
		if !text || addr == 0 {
			return
		}
		for i := range want {
			w := &want[i]
			switch {
			case addr > w.addr:
				w.more = true
			case !w.found || addr > w.best: // ties (_stext, _text): the first
				w.best, w.found = addr, true
				w.name = append(w.name[:0], name...)
			}
		}
	})
	if err != nil {
		return err
	}
	if len(t.names)+len(want) > maxNames {
		clear(t.names)
	}
	for _, w := range want {
		// The symbol below an address contains it unless the address lies
		// past the last symbol, beyond any function's size.
		if w.found && (w.more || w.addr-w.best < maxFuncSize) {
			t.names[w.addr] = string(w.name)
		} else {
			t.names[w.addr] = hex(w.addr)
		}
	}
	return nil
}

// Symbol returns the name of the function containing addr, without offset,
// or the address in hex ("0xffffffff81234567") when it cannot be resolved.
// An address not resolved yet costs a read of the file.
func (t *Table) Symbol(addr uint64) string {
	if t == nil || addr == 0 || t.hidden {
		return hex(addr)
	}
	if name, ok := t.names[addr]; ok {
		return name
	}
	if err := t.Resolve([]uint64{addr}); err != nil {
		return hex(addr) // unreadable now: tried again at the next call
	}
	return t.names[addr]
}

func hex(addr uint64) string { return "0x" + strconv.FormatUint(addr, 16) }
