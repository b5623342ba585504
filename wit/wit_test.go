// Package wit holds the WIT description of securelog's interfaces; this test
// keeps its store interface in step with the JSON-RPC method constants.
package wit

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

// storeFunctions returns the function names of `interface store` in the WIT file.
func storeFunctions(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("securelog.wit")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "interface store {")
	if start < 0 {
		t.Fatal("no `interface store` in securelog.wit")
	}
	end := strings.Index(text[start:], "\n}")
	if end < 0 {
		t.Fatal("unterminated interface store")
	}
	re := regexp.MustCompile(`(?m)^\s*([a-z][a-z0-9-]*)\s*:\s*func\(`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(text[start:start+end], -1) {
		names = append(names, m[1])
	}
	return names
}

func TestStoreInterfaceMatchesWireMethods(t *testing.T) {
	wit := storeFunctions(t)
	if len(wit) != 32 {
		t.Errorf("WIT store interface has %d functions, want init + 23 + 8 extensions", len(wit))
	}
	want := append([]string(nil), wire.Methods...)
	got := append([]string(nil), wit...)
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("WIT store functions and pkg/wire methods differ:\nwit:  %v\nwire: %v", got, want)
	}
	// Declaration order is the contract's order too.
	if strings.Join(wit, ",") != strings.Join(wire.Methods, ",") {
		t.Fatalf("order differs:\nwit:  %v\nwire: %v", wit, wire.Methods)
	}
}
