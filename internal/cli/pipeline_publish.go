package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

func init() { extraCommands = append(extraCommands, (*app).publishCmd) }

func (a *app) publishCmd() *cobra.Command {
	var p pipelineFlags
	var typ, sev, prod, payload, payloadFile, wait, msgID string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "publish STREAM --type T --severity S --producer P [--payload X | --payload-file FILE|-] [--wait accepted|committed|checkpointed] [--nats URL]",
		Short: "Publish one event to the pipeline and wait for the chosen acknowledgement level",
		Long: `Publish one event on securelog.in.STREAM (JetStream) and wait:
  accepted      JetStream stored it (not yet durable in the log);
  committed     the ingester chained and fsynced it (default): prints seqno and entry hash;
  checkpointed  its segment is sealed and signed (and, with a C2SP witness policy, it is inside a
                witnessed checkpoint of the log's tree): also prints the segment and inclusion proof.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.credsRole = node.RoleProducer
			if err := p.loadWithSecrets(cmd, a); err != nil {
				return err
			}
			stream := args[0]
			if err := wire.CheckStreamToken(stream); err != nil {
				return usageErr("%v", err)
			}
			severity, err := wire.ParseSeverity(sev)
			if err != nil {
				return usageErr("--severity: %v", err)
			}
			if wait != "accepted" && wait != "committed" && wait != "checkpointed" {
				return usageErr("--wait %q: want accepted, committed or checkpointed", wait)
			}
			body, err := a.readPayload(cmd, payload, payloadFile, false)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			nc, err := p.connect("securelog-publish")
			if err != nil {
				return err
			}
			defer nc.Close()
			pc, err := producer.New(nc, producer.Options{Logger: a.logger})
			if err != nil {
				return err
			}
			defer pc.Close()
			ev := producer.Event{Type: typ, Severity: severity, Producer: prod, Payload: body, MsgID: msgID}
			if wait == "accepted" {
				ack, err := pc.PublishAccepted(ctx, stream, ev)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"level": "accepted", "stream": stream, "js_seq": ack.Sequence, "duplicate": ack.Duplicate})
				}
				a.printf("accepted js_seq %d (not yet committed)\n", ack.Sequence)
				return nil
			}
			var watch *producer.CheckpointWatch
			if wait == "checkpointed" {
				// Listening before publishing: a segment signed before
				// the commit's receipt arrives still shows its witnesses.
				if watch, err = pc.WatchCheckpoints(ctx, stream); err != nil {
					return err
				}
				defer watch.Close()
			}
			f, err := pc.Publish(ctx, stream, ev)
			if err != nil {
				return err
			}
			res, err := f.Wait(ctx)
			if err != nil {
				return err
			}
			if wait == "committed" {
				if a.jsonOut {
					return a.printJSON(map[string]any{"level": "committed", "stream": stream, "seqno": res.Seqno,
						"entry_hash": res.EntryHash, "js_seq": res.JSSeq, "msg_id": res.MsgID})
				}
				a.printf("committed seqno %d entry_hash %x\n", res.Seqno, []byte(res.EntryHash))
				return nil
			}
			ck, err := watch.Await(ctx, res.Seqno)
			if err != nil {
				return fmt.Errorf("committed seqno %d, but: %w", res.Seqno, err)
			}
			if a.jsonOut {
				return a.printJSON(toCheckpointedView(res, ck))
			}
			a.printf("committed seqno %d entry_hash %x\n", res.Seqno, []byte(res.EntryHash))
			a.printf("checkpointed in segment %d (seq %d..%d) signed by %s, merkle root %x, leaf %d of %d, %d witness receipt(s)\n",
				ck.Segment.SegmentID, ck.Segment.SeqStart, ck.Segment.SeqEnd, ck.Segment.Signer(), ck.Segment.MerkleRoot,
				ck.Proof.LeafIndex, ck.Proof.TreeSize, len(ck.Receipts))
			if ck.TlogCheckpoint != "" {
				a.printf("inside the witnessed C2SP checkpoint:\n%s", ck.TlogCheckpoint)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&typ, "type", "", "event type")
	f.StringVar(&sev, "severity", "info", "severity: emergency, alert, critical, error, warning, notice, info, debug")
	f.StringVar(&prod, "producer", "", "producer name")
	f.StringVar(&payload, "payload", "", "payload text")
	f.StringVar(&payloadFile, "payload-file", "", "read the payload from FILE (- = stdin)")
	f.StringVar(&wait, "wait", "committed", "acknowledgement level to wait for: accepted, committed or checkpointed")
	f.StringVar(&msgID, "msg-id", "", "de-duplication id (Nats-Msg-Id; default random)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	p.add(c, "nats")
	return c
}
