package main

import (
	"strings"
	"testing"
)

// A real `go test -json` stream: one passing, one skipping, one failing test.
const stream = `{"Action":"start","Package":"example.com/p"}
{"Action":"run","Package":"example.com/p","Test":"TestOK"}
{"Action":"output","Package":"example.com/p","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"example.com/p","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"example.com/p","Test":"TestOK","Elapsed":0}
{"Action":"run","Package":"example.com/p","Test":"TestRoot"}
{"Action":"output","Package":"example.com/p","Test":"TestRoot","Output":"=== RUN   TestRoot\n"}
{"Action":"output","Package":"example.com/p","Test":"TestRoot","Output":"    gate.go:30: needs root\n"}
{"Action":"output","Package":"example.com/p","Test":"TestRoot","Output":"--- SKIP: TestRoot (0.00s)\n"}
{"Action":"skip","Package":"example.com/p","Test":"TestRoot","Elapsed":0}
{"Action":"run","Package":"example.com/p","Test":"TestBad"}
{"Action":"output","Package":"example.com/p","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"example.com/p","Test":"TestBad","Output":"    p_test.go:9: boom\n"}
{"Action":"output","Package":"example.com/p","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"example.com/p","Test":"TestBad","Elapsed":0}
{"Action":"output","Package":"example.com/p","Output":"FAIL\n"}
{"Action":"fail","Package":"example.com/p","Elapsed":0.01}
{"Action":"skip","Package":"example.com/empty","Elapsed":0}
`

func TestReport(t *testing.T) {
	var out strings.Builder
	failed, skips, err := report(strings.NewReader(stream), &out, false)
	if err != nil || !failed || skips != 1 {
		t.Fatalf("failed=%v skips=%d err=%v", failed, skips, err)
	}
	got := out.String()
	for _, want := range []string{
		"    p_test.go:9: boom\n--- FAIL: TestBad",
		"FAIL\texample.com/p\t0.010s\n",
		"1 skipped tests:\n  SKIP example.com/p TestRoot: gate.go:30: needs root\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestOK") {
		t.Errorf("a passing test's output is printed:\n%s", got)
	}
}

func TestReportNoResults(t *testing.T) {
	var out strings.Builder
	failed, _, err := report(strings.NewReader("# example.com/p\np.go:1: syntax error\n"), &out, false)
	if err != nil || !failed {
		t.Fatalf("failed=%v err=%v", failed, err)
	}
	if !strings.Contains(out.String(), "p.go:1: syntax error") {
		t.Errorf("plain output lost: %s", out.String())
	}
}

func TestReportVerbose(t *testing.T) {
	var out strings.Builder
	if _, _, err := report(strings.NewReader(stream), &out, true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"--- PASS: TestOK", "    p_test.go:9: boom\n", "1 skipped tests:\n  SKIP example.com/p TestRoot: gate.go:30: needs root\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
