// Package otlpencodingextension is an empty stand-in: the module proxy refuses this module,
// which only contrib tests import. Nothing here is linked into ebpfflow.
package otlpencodingextension
