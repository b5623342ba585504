package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/securelog/securelog/pkg/keystore"
)

// Configuration reaches the code in one order: flag > environment > config
// file (--config, pipeline commands) > default. Only this package reads
// the environment; libraries get values.
//
// Every flag --NAME can be set by the environment variable SECURELOG_NAME
// (upper case, '-' → '_'), e.g. --rpc-url by SECURELOG_RPC_URL. The
// exceptions and the reference's SECURE_LOG_* names, accepted as aliases,
// are in envNames.
const envPrefix = "SECURELOG_"

// envExceptions lists flags whose variables differ from the rule, by
// "COMMAND FLAG" or by "FLAG"; the first name is the documented one, the
// rest are aliases.
var envExceptions = map[string][]string{
	"kek":              {"SECURELOG_KEK_FILE"},
	"rpc-url":          {"SECURELOG_RPC_URL", "SECURE_LOG_RPC_URL"},
	"alg":              {"SECURELOG_KEYSTORE_ALG", "SECURE_LOG_KEYSTORE_ALG"},
	"serve-rpc store":  {"SECURELOG_STORE", "SECURE_LOG_STORE_CONFIG"},
	"witness data":     {"SECURELOG_WITNESS_DATA"},
	"verify-stack alg": {"SECURELOG_VERIFY_STACK_ALG"},
	"keys data":        {"SECURELOG_WITNESS_DATA"},
}

// noEnv lists flags the environment never sets.
var noEnv = map[string]bool{"help": true, "version": true}

// envNames returns the variables of flag name of command cmd, documented
// name first.
func envNames(cmd *cobra.Command, name string) []string {
	if cmd != nil {
		if n, ok := envExceptions[cmd.Name()+" "+name]; ok {
			return n
		}
	}
	if n, ok := envExceptions[name]; ok {
		return n
	}
	return []string{envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

// settingName is how errors name a flag: "--rpc-url / SECURELOG_RPC_URL".
func settingName(cmd *cobra.Command, flag string) string {
	return "--" + flag + " / " + envNames(cmd, flag)[0]
}

// applyEnv sets every flag of cmd that was not given on the command line
// from its environment variable, and records which it set (fromEnv), so
// that a config file loaded later does not override them.
func (a *app) applyEnv(cmd *cobra.Command) error {
	if a.lookupEnv == nil {
		return nil
	}
	a.fromEnv = map[string]string{}
	a.envVar = map[string]string{}
	// A flag and its deprecated names share one value: given on the
	// command line under any name, the environment sets none of them;
	// else the new name's variable wins over an old name's.
	changed := map[string]bool{}
	aliases := map[string][]*pflag.Flag{} // new name → its deprecated names
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if n := aliasOf(f); n != "" {
			aliases[n] = append(aliases[n], f)
			if f.Changed {
				changed[n] = true
			}
		}
		if f.Changed {
			changed[f.Name] = true
		}
	})
	var err error
	set := func(f *pflag.Flag) bool {
		for _, env := range envNames(cmd, f.Name) {
			v, ok := a.lookupEnv(env)
			if !ok {
				continue
			}
			if e := f.Value.Set(v); e != nil {
				err = usageErr("%s=%q (sets --%s): %v", env, v, f.Name, e)
				return true
			}
			a.fromEnv[f.Name], a.envVar[f.Name] = v, env
			return true
		}
		return false
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || changed[f.Name] || noEnv[f.Name] || aliasOf(f) != "" || set(f) {
			return
		}
		for _, old := range aliases[f.Name] { // the deprecated names' variables
			if set(old) {
				fmt.Fprintf(a.stderr, "securelog: warning: %s is deprecated, use %s\n", a.envVar[old.Name], envNames(cmd, f.Name)[0])
				a.fromEnv[f.Name], a.envVar[f.Name] = a.fromEnv[old.Name], a.envVar[old.Name]
				return
			}
		}
	})
	return err
}

// checkAlg checks the --alg value of a key generation command, naming the
// flag or the variable it came from.
func (a *app) checkAlg(cmd *cobra.Command, alg string) error {
	if _, err := keystore.ParseAlgorithm(alg); err != nil {
		if env, ok := a.envVar["alg"]; ok {
			return usageErr("%s=%q (sets --alg): %v", env, alg, err)
		}
		return usageErr("%s: %v", settingName(cmd, "alg"), err)
	}
	return nil
}

// env returns the value of the environment variable name ("" if unset).
func (a *app) env(name string) string {
	if a.lookupEnv == nil {
		return ""
	}
	v, _ := a.lookupEnv(name)
	return v
}
