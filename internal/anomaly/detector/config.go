package detector

import (
	"errors"
	"fmt"
)

// Config holds the few operational settings of a detector. Model internals
// (smoothing rates, bin sizes) are constants documented where they are used:
// they are not meant to be tuned per deployment.
type Config struct {
	// Threshold is the score in [0,1] from which a point is reported
	// anomalous. A score s means the deviation had a probability of about
	// 10^(-10*s) under the series' recent behaviour. Scores come in steps
	// of 0.01 (scoreSteps): a threshold between two steps acts as the step
	// above it.
	Threshold float64
	// Warmup is the number of points a series must have before it is scored.
	Warmup int
	// ResolveAfter is the number of consecutive calm points after which an
	// incident resolves. Until then further points of the series are not
	// reported, so one incident yields one detection.
	ResolveAfter int
	// Memory is the effective number of recent points (exponential decay)
	// against which the rarity of a deviation is judged.
	Memory int
}

// DefaultConfig returns the configuration used by the processor and by the
// NAB runner.
func DefaultConfig() Config {
	return Config{
		Threshold:    0.4,
		Warmup:       100,
		ResolveAfter: 30,
		Memory:       2000,
	}
}

// Validate reports the first invalid setting, naming its key.
func (c Config) Validate() error {
	switch {
	case !(c.Threshold > 0 && c.Threshold <= 1):
		return fmt.Errorf("threshold: must be in (0,1], got %v", c.Threshold)
	case c.Warmup < 0:
		return fmt.Errorf("warmup: must be >= 0, got %d", c.Warmup)
	case c.ResolveAfter < 1:
		return fmt.Errorf("resolve_after: must be >= 1, got %d", c.ResolveAfter)
	case c.Memory < 10:
		return fmt.Errorf("memory: must be >= 10, got %d", c.Memory)
	}
	return nil
}

var errInvalidConfig = errors.New("invalid detector config")
