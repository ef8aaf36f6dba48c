package kallsyms

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

func TestSymbol(t *testing.T) {
	tb, err := Load("testdata/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Hidden() {
		t.Fatal("fixture has addresses")
	}
	tests := []struct {
		addr uint64
		want string
	}{
		{0xffffffff81001000, "kfree_skb_reason"},
		{0xffffffff810013ff, "kfree_skb_reason"},
		{0xffffffff81001401, "sk_skb_reason_drop"},
		{0xffffffff81002010, "sk_skb_reason_drop"}, // data symbols are skipped
		{0xffffffff81003004, "weak_func"},
		{0xffffffffc0201010, "nf_hook_slow_mod"}, // module name stripped
		{0xffffffffc0201234, "nft_do_chain"},
		{0xffffffffc0301234, "0xffffffffc0301234"}, // far past the last symbol
		{0xffffffff80000000, "0xffffffff80000000"}, // below the first
		{0, "0x0"},
	}
	for _, tt := range tests {
		if got := tb.Symbol(tt.addr); got != tt.want {
			t.Errorf("Symbol(%#x) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	// _stext and _text share an address: either name is right.
	if got := tb.Symbol(0xffffffff81000010); got != "_stext" && got != "_text" {
		t.Errorf("got %q", got)
	}
}

func TestHidden(t *testing.T) {
	tb, err := Load("testdata/kallsyms-hidden")
	if err != nil {
		t.Fatal(err)
	}
	if !tb.Hidden() {
		t.Fatal("all-zero addresses not reported hidden")
	}
	if got := tb.Symbol(0xffffffff81001000); got != "0xffffffff81001000" {
		t.Fatalf("got %q", got)
	}
	var nilTable *Table
	if got := nilTable.Symbol(0x10); got != "0x10" {
		t.Fatalf("nil table: %q", got)
	}
}

func TestMissing(t *testing.T) {
	if _, err := Load("testdata/nope"); err == nil {
		t.Fatal("want error")
	}
}

// TestRealKallsyms resolves a function every kernel has, from its own address.
func TestRealKallsyms(t *testing.T) {
	testkit.RequireRoot(t) // unprivileged readers see zero addresses
	tb, err := Load("/proc/kallsyms")
	if err != nil {
		testkit.Unsupported(t, "/proc/kallsyms: "+err.Error())
	}
	if tb.Hidden() {
		testkit.Unsupported(t, "kernel addresses in /proc/kallsyms (kernel.kptr_restrict hides them; run as root with kernel.kptr_restrict<2)")
	}
	raw, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && (f[2] == "sk_skb_reason_drop" || f[2] == "kfree_skb_reason") {
			addr = f[0]
			break
		}
	}
	if addr == "" {
		testkit.Unsupported(t, "kfree_skb_reason / sk_skb_reason_drop in /proc/kallsyms")
	}
	a, err := strconv.ParseUint(addr, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	got := tb.Symbol(a + 8)
	if got != "sk_skb_reason_drop" && got != "kfree_skb_reason" {
		t.Fatalf("Symbol(%#x+8) = %q", a, got)
	}
	t.Logf("%#x+8 -> %s", a, got)
}

// TestResolveOnce: a flush's locations are named in one read of the file,
// and never read again.
func TestResolveOnce(t *testing.T) {
	tb, err := Load("testdata/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	addrs := []uint64{0xffffffff81001000, 0xffffffffc0201234, 0xffffffff81001000, 0xffffffffc0301234, 0}
	if err := tb.Resolve(addrs); err != nil {
		t.Fatal(err)
	}
	if tb.Reads() != 2 {
		t.Fatalf("%d reads of the file, want 2 (Load, one Resolve)", tb.Reads())
	}
	for _, a := range addrs {
		tb.Symbol(a)
	}
	if err := tb.Resolve(addrs); err != nil {
		t.Fatal(err)
	}
	if tb.Reads() != 2 {
		t.Fatalf("%d reads of the file after resolved addresses were asked again, want 2", tb.Reads())
	}
	if got := tb.Symbol(0xffffffffc0201234); got != "nft_do_chain" {
		t.Fatalf("got %q", got)
	}
	if got := tb.Symbol(0xffffffff81003004); got != "weak_func" || tb.Reads() != 3 {
		t.Fatalf("a new address: %q after %d reads, want weak_func after 3", got, tb.Reads())
	}
}

// BenchmarkResolve is one read of the machine's kallsyms for a flush's new
// drop locations; BenchmarkSymbol a location already named.
func BenchmarkResolve(b *testing.B) {
	tb, a := realTable(b)
	b.ReportAllocs()
	for b.Loop() {
		clear(tb.names)
		if err := tb.Resolve([]uint64{a, a + 64, a + 4096}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSymbol(b *testing.B) {
	tb, a := realTable(b)
	tb.Symbol(a)
	b.ReportAllocs()
	for b.Loop() {
		_ = tb.Symbol(a)
	}
}

// realTable loads /proc/kallsyms and returns the address of its first text
// symbol.
func realTable(b *testing.B) (*Table, uint64) {
	tb, err := Load("/proc/kallsyms")
	if err != nil || tb.Hidden() {
		testkit.Unsupported(b, "a readable /proc/kallsyms")
	}
	var first uint64
	tb.scan(func(addr uint64, text bool, _ []byte) {
		if text && first == 0 {
			first = addr
		}
	})
	return tb, first + 4
}
