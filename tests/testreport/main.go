// Command testreport reads `go test -json` from stdin and prints what a
// plain `go test` prints (each package's result, and the full output of
// every failed test), then the list of tests that skipped, with their
// reasons. CI expects that list to be empty: with
// EBPFFLOW_REQUIRE_PRIVILEGED=1 a skip through internal/testkit fails
// instead, and any other skip fails the report. It exits 1 when a test or
// package failed (or the input held no test result), 0 otherwise; `make test` runs it in a pipe with pipefail,
// so go test's own status counts too.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json output.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

func main() {
	verbose := flag.Bool("v", false, "print every test's output as it arrives, as go test -v does")
	flag.Parse()
	failed, skipped, err := report(os.Stdin, os.Stdout, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	if skipped > 0 && os.Getenv("EBPFFLOW_REQUIRE_PRIVILEGED") == "1" {
		fmt.Println("testreport: EBPFFLOW_REQUIRE_PRIVILEGED=1 forbids skipping")
		failed = true
	}
	if failed {
		os.Exit(1)
	}
}

// report writes the summary of the events read from r to w and reports
// whether anything failed and how many tests skipped. verbose writes all
// output as it arrives.
func report(r io.Reader, w io.Writer, verbose bool) (failed bool, skips int, err error) {
	var (
		output  = map[key][]string{} // a test's (or package's) output so far
		reasons = map[key][]string{} // its last lines, for the skip reason
		skipped []string
		results int
	)
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		line := s.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, string(line)) // build errors and other plain text
			continue
		}
		k := key{e.Package, e.Test}
		if e.Action == "output" && e.Test != "" {
			if rs := append(reasons[k], e.Output); len(rs) > 4 {
				reasons[k] = rs[len(rs)-4:]
			} else {
				reasons[k] = rs
			}
		}
		switch e.Action {
		case "output":
			if verbose {
				fmt.Fprint(w, e.Output)
				continue
			}
			output[k] = append(output[k], e.Output)
		case "skip":
			results++
			if e.Test == "" {
				delete(output, k) // a package without tests
				continue
			}
			skipped = append(skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(reasons[k])))
			delete(reasons, k)
			delete(output, k)
		case "pass":
			results++
			delete(reasons, k)
			if e.Test == "" && !verbose {
				fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(output, k)
		case "fail":
			results++
			delete(reasons, k)
			failed = true
			fmt.Fprint(w, strings.Join(output[k], ""))
			if e.Test == "" && !verbose {
				fmt.Fprintf(w, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(output, k)
		}
	}
	if err := s.Err(); err != nil {
		return true, len(skipped), err
	}
	if results == 0 {
		fmt.Fprintln(w, "testreport: no test result in the input")
		return true, 0, nil
	}
	sort.Strings(skipped)
	fmt.Fprintf(w, "\n%d skipped tests", len(skipped))
	if len(skipped) == 0 {
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, ":")
		for _, sk := range skipped {
			fmt.Fprintln(w, "  SKIP", sk)
		}
	}
	return failed, len(skipped), nil
}

// skipReason is the message t.Skip printed: the line before "--- SKIP".
func skipReason(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		l := strings.TrimSpace(out[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return l
	}
	return "(no reason given)"
}
