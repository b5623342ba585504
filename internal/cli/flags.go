package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// annAliasOf marks a deprecated flag name: its value is the flag it is an
// old name of.
const annAliasOf = "securelog-alias-of"

// aliasFlag registers old as a hidden, deprecated name of the flag newName
// of fs: both set the same value; using old warns (warnDeprecated). The
// environment variable of old (SECURELOG_<OLD>) keeps working too, with a
// warning, unless the new flag or its variable is set.
func aliasFlag(fs *pflag.FlagSet, old, newName string) {
	nf := fs.Lookup(newName)
	if nf == nil {
		panic("aliasFlag: no flag --" + newName)
	}
	fs.Var(nf.Value, old, "deprecated: use --"+newName)
	_ = fs.SetAnnotation(old, annAliasOf, []string{newName})
	_ = fs.MarkHidden(old)
}

// aliasOf returns the flag f is a deprecated name of ("" if none).
func aliasOf(f *pflag.Flag) string {
	if v := f.Annotations[annAliasOf]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// warnDeprecated warns on stderr about every deprecated flag name given on
// the command line. (pflag's own MarkDeprecated would print to cobra's
// output, which is stdout here and must stay clean for --json.)
func (a *app) warnDeprecated(cmd *cobra.Command) {
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if n := aliasOf(f); n != "" {
			fmt.Fprintf(a.stderr, "securelog: warning: --%s is deprecated, use --%s\n", f.Name, n)
		}
	})
}

// Command groups of `securelog --help`.
var commandGroups = []*cobra.Group{
	{ID: "client", Title: "Client commands (events, entries, segments, streams):"},
	{ID: "audit", Title: "Audit and verification:"},
	{ID: "keys", Title: "Keys:"},
	{ID: "servers", Title: "Workers and servers:"},
}

// commandGroup names the group of each top-level command; commands not
// listed appear under "Additional Commands".
var commandGroup = map[string]string{
	"append": "client", "read": "client", "head": "client", "publish": "client", "streams": "client",
	"segments": "client", "close-segment": "client", "sign-segment": "client", "checkpoint": "client",
	"open-payload": "client", "query": "client", "tail": "client", "partitions": "client",
	"verify": "audit", "verify-chain": "audit", "prove": "audit", "verify-proof": "audit", "consistency": "audit",
	"export": "audit", "audit": "audit", "verify-stack": "audit",
	"keys": "keys", "kek": "keys", "pkcs11": "keys",
	"up": "servers", "ingester": "servers", "sealer": "servers", "signer": "servers", "witness": "servers",
	"serve-rpc": "servers", "console": "servers",
}

// groupCommands puts root's commands into commandGroups.
func groupCommands(root *cobra.Command) {
	root.AddGroup(commandGroups...)
	for _, c := range root.Commands() {
		if g, ok := commandGroup[c.Name()]; ok {
			c.GroupID = g
		}
	}
}
