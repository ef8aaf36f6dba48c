//go:build !linux

package ebpfflowreceiver // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver"

import (
	"fmt"
	"runtime"

	"go.opentelemetry.io/collector/receiver"
)

func newReceiver(receiver.Settings, *Config) (receiverCore, error) {
	return nil, fmt.Errorf("the ebpfflow receiver needs Linux (eBPF), this collector runs on %s: remove ebpfflow from this collector's pipelines", runtime.GOOS)
}
