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
	return subject + " " + verb(from, to) + " from " + FormatValue(from, unit) + " to " + FormatValue(to, unit)
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
	switch how {
	case resolvedExpired:
		return fmt.Sprintf("%s stopped reporting %s after the anomaly began; it had %s from %s to %s",
			subject, d, had, FormatValue(firedExp, unit), FormatValue(firedObs, unit))
	case resolvedSettled:
		return fmt.Sprintf("%s settled at a new level: %s %s after it had %s from %s to %s; no longer reported as an anomaly",
			subject, FormatValue(obs, unit), d, had, FormatValue(firedExp, unit), FormatValue(firedObs, unit))
	}
	return fmt.Sprintf("%s returned to normal after %s: %s (expected %s); it had %s from %s to %s",
		subject, d, FormatValue(obs, unit), FormatValue(exp, unit), had, FormatValue(firedExp, unit), FormatValue(firedObs, unit))
}

// FormatValue writes v in unit for people: "310 ms", "1.2 s", "4.2/s",
// "2.5%", "1.3 MB/s", "17 packet/s".
func FormatValue(v float64, unit string) string {
	switch unit {
	case "ms":
		if math.Abs(v) >= 1000 {
			return num(v/1000) + " s"
		}
		return num(v) + " ms"
	case "s":
		return FormatValue(v*1000, "ms")
	case "By/s":
		return bytes(v) + "/s"
	case "By":
		return bytes(v)
	case "1":
		return num(v*100) + "%"
	case "1/s", "/s":
		return num(v) + "/s"
	case "":
		return num(v)
	}
	u := strings.NewReplacer("{", "", "}", "").Replace(unit)
	if u == "1/s" {
		return num(v) + "/s"
	}
	return num(v) + " " + u
}

func bytes(v float64) string {
	const units = "kMGTPE"
	if math.Abs(v) < 1000 {
		return num(v) + " B"
	}
	i := -1
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return num(v) + " " + units[i:i+1] + "B"
}

// num writes v with about three significant digits and no exponent.
func num(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		if v == 0 {
			return "0"
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	dec := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	dec = min(max(dec, 0), 6)
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
