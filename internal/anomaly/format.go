package anomaly

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// changeSentence: "p99 RTT a → b:8080 rose from 12 ms to 310 ms".
func changeSentence(subject string, from, to float64, unit string) string {
	f, t := formatPair(from, to, unit)
	return subject + " " + verb(from, to) + " from " + f + " to " + t
}

func verb(from, to float64) string {
	if to < from {
		return "fell"
	}
	return "rose"
}

// resolvedSentence: "p99 RTT a → b:8080 returned to normal after 2m30s:
// 13 ms (expected 12 ms); it had risen from 12 ms to 310 ms".
func resolvedSentence(subject string, firedExp, firedObs, obs, exp float64, unit string, d time.Duration, how resolution) string {
	had := "risen"
	if firedObs < firedExp {
		had = "fallen"
	}
	d = d.Round(time.Second)
	from, to := formatPair(firedExp, firedObs, unit)
	switch how {
	case resolvedExpired:
		return fmt.Sprintf("%s stopped reporting %s after the anomaly began; it had %s from %s to %s",
			subject, d, had, from, to)
	case resolvedSettled:
		return fmt.Sprintf("%s settled at a new level: %s %s after it had %s from %s to %s; no longer reported as an anomaly",
			subject, FormatValue(obs, unit), d, had, from, to)
	}
	o, x := formatPair(obs, exp, unit)
	return fmt.Sprintf("%s returned to normal after %s: %s (expected %s); it had %s from %s to %s",
		subject, d, o, x, had, from, to)
}

// formatPair writes the two values of a change, with more significant
// digits while the usual three would print different values alike: a
// message never reads "from 0 B/s to 0 B/s" or "from 1 kB/s to 1 kB/s".
func formatPair(a, b float64, unit string) (string, string) {
	for digits := 3; ; digits++ {
		sa, sb := formatValue(a, unit, digits), formatValue(b, unit, digits)
		if sa != sb || a == b || digits >= 17 {
			return sa, sb
		}
	}
}

// FormatValue writes v in unit for people: "310 ms", "1.2 s", "4.2/s",
// "2.5%", "1.3 MB/s", "17 packet/s".
func FormatValue(v float64, unit string) string { return formatValue(v, unit, 3) }

// formatValue is FormatValue with about digits significant digits.
func formatValue(v float64, unit string, digits int) string {
	n := func(v float64) string { return num(v, digits) }
	switch unit {
	case "ms":
		if math.Abs(v) >= 1000 {
			return n(v/1000) + " s"
		}
		return n(v) + " ms"
	case "s":
		return formatValue(v*1000, "ms", digits)
	case "By/s":
		return bytes(v, digits) + "/s"
	case "By":
		return bytes(v, digits)
	case "1":
		return n(v*100) + "%"
	case "1/s", "/s":
		return n(v) + "/s"
	case "":
		return n(v)
	}
	u := strings.NewReplacer("{", "", "}", "").Replace(unit)
	if u == "1/s" {
		return n(v) + "/s"
	}
	return n(v) + " " + u
}

func bytes(v float64, digits int) string {
	const units = "kMGTPE"
	if math.Abs(v) < 1000 {
		return num(v, digits) + " B"
	}
	i := -1
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return num(v, digits) + " " + units[i:i+1] + "B"
}

// num writes v with about digits significant digits and no exponent (at
// most digits+3 decimals: with three digits, 1e-7 is 0).
func num(v float64, digits int) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		if v == 0 {
			return "0"
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	dec := digits - 1 - int(math.Floor(math.Log10(math.Abs(v))))
	dec = min(max(dec, 0), digits+3)
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
