// Package kallsyms resolves kernel text addresses (drop locations) to
// function names from /proc/kallsyms.
package kallsyms

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// maxFuncSize bounds how far past the last known symbol an address may lie
// and still be attributed to it.
const maxFuncSize = 1 << 16

// sym is one text symbol; its name is names[off:off+n] of its Table. A
// kernel has 100k+ of them: one string of all names and pointer-free
// entries hold them in ~5 MB and three objects, where a string per symbol
// took ~7 MB and 120k objects for the garbage collector to scan.
type sym struct {
	addr   uint64
	off, n uint32
}

// Table is a sorted snapshot of the kernel's text symbols.
type Table struct {
	syms   []sym
	names  string
	hidden bool
}

// Load reads a kallsyms file. When kernel.kptr_restrict hides the addresses
// (all zero) the table is still usable, resolves nothing and reports Hidden.
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open kallsyms: %w", err)
	}
	defer f.Close()
	t, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

func parse(r io.Reader) (*Table, error) {
	t := &Table{}
	var names []byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	lines, zero := 0, 0
	for sc.Scan() {
		// "ffffffff81000000 T _stext" or "ffffffffc0201000 t name\t[module]"
		line := sc.Bytes()
		lines++
		addrEnd := bytes.IndexByte(line, ' ')
		if addrEnd <= 0 || len(line) < addrEnd+4 {
			continue
		}
		addr, err := strconv.ParseUint(string(line[:addrEnd]), 16, 64)
		if err != nil {
			continue
		}
		if addr == 0 {
			zero++
			continue
		}
		switch line[addrEnd+1] {
		case 't', 'T', 'w', 'W': // text and weak: where code frees skbs
		default:
			continue
		}
		name := line[addrEnd+3:]
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name = name[:i] // drop "[module]": the function name is what users search for
		}
		t.syms = append(t.syms, sym{addr: addr, off: uint32(len(names)), n: uint32(len(name))})
		names = append(names, name...)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	t.names = string(names)
	t.syms = slices.Clone(t.syms) // drop the spare capacity of append
	t.hidden = lines > 0 && zero == lines
	slices.SortFunc(t.syms, func(a, b sym) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	return t, nil
}

// Hidden reports that every address read as zero: kernel.kptr_restrict (or
// missing CAP_SYSLOG) hides them, so locations stay hexadecimal.
func (t *Table) Hidden() bool { return t.hidden }

// Len is the number of text symbols loaded.
func (t *Table) Len() int { return len(t.syms) }

// Symbol returns the name of the function containing addr, without offset,
// or the address in hex ("0xffffffff81234567") when it cannot be resolved.
func (t *Table) Symbol(addr uint64) string {
	if t != nil && addr != 0 {
		// First symbol above addr; the one before it contains addr.
		i, _ := slices.BinarySearchFunc(t.syms, addr+1, func(s sym, a uint64) int {
			switch {
			case s.addr < a:
				return -1
			case s.addr > a:
				return 1
			}
			return 0
		})
		if i > 0 && (i < len(t.syms) || addr-t.syms[i-1].addr < maxFuncSize) {
			s := t.syms[i-1]
			return t.names[s.off : s.off+s.n]
		}
	}
	return "0x" + strconv.FormatUint(addr, 16)
}
