package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/securelog"
)

func (a *app) streamsCmd() *cobra.Command {
	c := &cobra.Command{Use: "streams", Short: "Create, list and deprecate streams"}
	var tier, desc string
	create := &cobra.Command{
		Use:   "create NAME --tier public|protected|highly-restricted [--description D]",
		Short: "Create a stream with a confidentiality tier",
		Long: `Create a stream. Tiers: public (plaintext), protected (payloads sealed with --kek),
highly-restricted (sealed, and event type / producer replaced by keyed tags).
Creating again with the same values is a no-op; changing the tier of a stream that
has entries, or re-creating a deprecated stream, is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0], create: true})
			if err != nil {
				return err
			}
			defer closeFn()
			var d *string
			if cmd.Flags().Changed("description") {
				d = &desc
			}
			if err := l.CreateStream(cmd.Context(), args[0], tier, d); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"stream": args[0], "tier": tier})
			}
			a.printf("stream %s (%s)\n", args[0], tier)
			return nil
		},
	}
	create.Flags().StringVar(&tier, "tier", "public", "public, protected or highly-restricted")
	create.Flags().StringVar(&desc, "description", "", "description")
	list := &cobra.Command{
		Use:   "list",
		Short: "List streams in creation order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every partition's store, merged (one row per name).
			parts, err := a.fanOut(cmd.Context())
			if err != nil {
				return err
			}
			var infos []securelog.StreamInfo
			seen := map[string]bool{}
			for _, p := range parts {
				l, closeFn, err := a.openLog(cmd.Context(), openOpts{part: &p})
				if err != nil {
					return fmt.Errorf("partition %s: %w", p.Name(), err)
				}
				got, err := l.ListStreams(cmd.Context())
				closeFn()
				if err != nil {
					return fmt.Errorf("partition %s: %w", p.Name(), err)
				}
				for _, s := range got {
					if !seen[s.Name] {
						seen[s.Name] = true
						infos = append(infos, s)
					}
				}
			}
			if a.jsonOut {
				return a.printJSON(infos)
			}
			for _, s := range infos {
				line := s.Name + "\t" + s.Tier
				if s.DeprecatedAt != nil {
					line += "\tdeprecated"
				}
				if s.Description != nil {
					line += "\t" + *s.Description
				}
				a.printf("%s\n", line)
			}
			return nil
		},
	}
	dep := &cobra.Command{
		Use:   "deprecate NAME",
		Short: "Deprecate a stream: its entries stay verifiable, new appends are refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0]})
			if err != nil {
				return err
			}
			defer closeFn()
			if err := l.DeprecateStream(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"stream": args[0], "deprecated": true})
			}
			a.printf("stream %s deprecated\n", args[0])
			return nil
		},
	}
	c.AddCommand(create, list, dep)
	return c
}
