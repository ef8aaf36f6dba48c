package testkit

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// Encode returns v's bytes in the host's byte order, as a kernel map holds
// a bpf2go-generated struct.
func Encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := binary.Append(nil, binary.NativeEndian, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Unhex decodes a hex dump (a map entry read from a real kernel).
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
