package testkit

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Pcap is dumpcap capturing on an interface of a network namespace: the
// independent record of what went over the wire, read back with tshark.
type Pcap struct {
	File    string
	Options []string // tshark preferences for Fields ("http.desegment_body:FALSE")
	cmd     *exec.Cmd
	done    chan struct{}
	log     strings.Builder // dumpcap's stderr, complete once done is closed
}

// StartPcap captures on dev in ns (the host's namespace when ns is "")
// with a capture filter, into a file in dir, until Stop or cleanup.
func StartPcap(t testing.TB, ns Netns, dev, filter, dir string) *Pcap {
	t.Helper()
	RequireTools(t, "dumpcap", "tshark")
	p := &Pcap{File: filepath.Join(dir, "capture.pcapng"), done: make(chan struct{})}
	// A 64 MiB kernel buffer: a burst (a 10 MiB download) must not
	// overflow the default 2 MiB while dumpcap catches up on a busy machine.
	args := []string{"dumpcap", "-q", "-B", "64", "-i", dev, "-f", filter, "-w", p.File}
	if ns != "" {
		// nsenter execs dumpcap itself: the signal that stops it reaches it.
		args = append([]string{"nsenter", "--net=/var/run/netns/" + string(ns)}, args...)
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start dumpcap: %v", err)
	}
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.log.WriteString(s.Text() + "\n")
			if strings.HasPrefix(s.Text(), "Capturing on") {
				ready <- ""
			}
		}
		ready <- p.log.String()
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("dumpcap exited: %s", msg)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatal("dumpcap did not start capturing in 10s")
	}
	// "Capturing on" comes before the packet socket is live; packets
	// sent in the next moment may be missed.
	time.Sleep(500 * time.Millisecond)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop ends the capture and waits for the file to be complete.
func (p *Pcap) Stop(t testing.TB) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	time.Sleep(200 * time.Millisecond) // the last packets reach the capture
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
	_ = p.cmd.Wait()
	t.Logf("dumpcap: %s", strings.ReplaceAll(strings.TrimSpace(p.log.String()), "\n", "; "))
}

// WaitFor polls the capture as dumpcap writes it until the display filter
// matches at least n packets. On a loaded machine dumpcap can lag behind
// the traffic, and what it has not read when it is stopped is not in the
// file: stopping only after the expected packets are there keeps the
// oracle complete.
func (p *Pcap) WaitFor(t testing.TB, display string, n int, timeout time.Duration) {
	t.Helper()
	args := []string{"-r", p.File, "-T", "fields", "-e", "frame.number", "-Y", display}
	for _, o := range p.Options {
		args = append(args, "-o", o)
	}
	deadline := time.Now().Add(timeout)
	for {
		// A file read while it is written ends mid-packet: tshark then
		// exits non-zero after printing what it read, which is what counts.
		out, _ := exec.Command("tshark", args...).Output()
		got := strings.Count(string(out), "\n")
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture %s: %d of %d packets matching %q after %v", p.File, got, n, display, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Fields runs tshark over the capture with a display filter (may be empty)
// and returns one row per packet of the given fields (tshark -T fields).
func (p *Pcap) Fields(t testing.TB, display string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-r", p.File, "-T", "fields", "-E", "separator=\t", "-o", "tcp.relative_sequence_numbers:FALSE"}
	for _, o := range p.Options {
		args = append(args, "-o", o)
	}
	if display != "" {
		args = append(args, "-Y", display)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	var rows [][]string
	for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}
