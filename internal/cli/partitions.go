package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/wire"
)

func init() { extraCommands = append(extraCommands, (*app).partitionsCmd) }

func (a *app) partitionsCmd() *cobra.Command {
	var p pipelineFlags
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "partitions list | add NAME | assign STREAM PARTITION",
		Short: "Show or change the partition map (which partition owns each stream)",
		Long: `A partition owns a set of streams and has its own store, ingester, sealer and
signer (--partition NAME on each). The map lives in the JetStream KV bucket
SECURELOG_PARTITIONS, so every client and worker routes the same way.

  list                      the partitions and the streams assigned to each
  add NAME                  register a partition (start its workers with --partition NAME)
  assign STREAM PARTITION   give STREAM to PARTITION for good

A stream that was never assigned belongs to the default partition, which
claims it at its first event. A stream belongs to one partition for life:
assigning one that already belongs elsewhere is refused with its owner.
See docs/scaling.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.credsRole = node.RoleAdmin // the operator changes the map
			if err := p.loadWithSecrets(cmd, a); err != nil {
				return err
			}
			switch {
			case args[0] == "list" && len(args) == 1:
			case args[0] == "add" && len(args) == 2:
			case args[0] == "assign" && len(args) == 3:
			default:
				return usageErr("want: partitions list | add NAME | assign STREAM PARTITION")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			nc, err := p.connect("securelog-partitions")
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			m, err := partition.Open(ctx, js, partition.OpenConfig{Create: args[0] != "list", Replicas: p.cfg.JetStream.Replicas})
			if err != nil {
				return err
			}
			switch args[0] {
			case "add":
				added, err := m.Add(ctx, args[1])
				if err != nil {
					return usageOrErr(err)
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"partition": args[1], "added": added})
				}
				if added {
					a.printf("partition %s added\n", args[1])
				} else {
					a.printf("partition %s already exists\n", args[1])
				}
				return nil
			case "assign":
				if err := m.Assign(ctx, args[1], args[2]); err != nil {
					return usageOrErr(err)
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"stream": args[1], "partition": args[2]})
				}
				a.printf("stream %s belongs to partition %s\n", args[1], args[2])
				return nil
			}
			s, err := m.Snapshot(ctx)
			if err != nil {
				return err
			}
			if a.jsonOut {
				type row struct {
					Name    string   `json:"name"`
					Streams []string `json:"streams"`
				}
				out := []row{}
				for _, name := range s.Partitions {
					out = append(out, row{Name: name, Streams: append([]string{}, s.Streams(name)...)})
				}
				return a.printJSON(out)
			}
			for _, name := range s.Partitions {
				streams := s.Streams(name)
				note := ""
				if name == wire.DefaultPartition {
					note = " (and every unassigned stream)"
				}
				a.printf("%s\t%d stream(s)%s\t%s\n", name, len(streams), note, strings.Join(streams, " "))
			}
			return nil
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	p.add(c, "nats")
	c.Flags().IntVar(&p.cfg.JetStream.Replicas, "replicas", 1, "replicas of the SECURELOG_PARTITIONS bucket when this command creates it")
	return c
}

// usageOrErr makes bad input (an unknown partition, a conflicting
// assignment, a malformed name) a usage error (exit 2).
func usageOrErr(err error) error {
	var (
		unk *wire.UnknownPartitionError
		con *wire.PartitionConflictError
		inv *wire.InvalidError
	)
	if errors.As(err, &unk) || errors.As(err, &con) || errors.As(err, &inv) {
		return &ExitError{Code: 2, Err: err}
	}
	return err
}
