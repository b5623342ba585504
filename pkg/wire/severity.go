package wire

import (
	"encoding/json"
	"fmt"
)

// Severity is an RFC 5424 severity (SPEC §3.1). Lower ordinal = more urgent.
// Only the lowercase spelling is ever serialised; the ordinal never is.
type Severity uint8

// The eight severities in syslog order.
const (
	Emergency Severity = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Info
	Debug
)

var severityNames = [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}

// SeverityNames lists the accepted spellings, most urgent first.
func SeverityNames() []string { return append([]string(nil), severityNames[:]...) }

// String returns the canonical lowercase spelling.
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// Valid reports whether s is one of the eight severities.
func (s Severity) Valid() bool { return int(s) < len(severityNames) }

// ParseSeverity parses the exact, case-sensitive spelling of a severity.
// Anything else is an *InvalidError naming the value and the accepted names.
func ParseSeverity(text string) (Severity, error) {
	for i, n := range severityNames {
		if n == text {
			return Severity(i), nil
		}
	}
	return 0, Invalidf("unknown severity %q: expected one of emergency, alert, critical, error, warning, notice, info, debug", text)
}

// MarshalJSON writes the lowercase spelling.
func (s Severity) MarshalJSON() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("marshal severity: invalid ordinal %d", uint8(s))
	}
	return json.Marshal(s.String())
}

// UnmarshalJSON accepts only the exact lowercase spellings.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return fmt.Errorf("severity: %w", err)
	}
	v, err := ParseSeverity(text)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
