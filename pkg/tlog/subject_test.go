package tlog

import (
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

// TestCheckpointSubjectIsNoStreamSubject: the C2SP checkpoint announcement
// must not be the subject of any per-stream kind, or a subscriber to the
// v1 checkpoint events of a stream named "log" (securelog.checkpoint.log)
// would receive signed notes where it expects CheckpointMsg JSON.
func TestCheckpointSubjectIsNoStreamSubject(t *testing.T) {
	kinds := []string{wire.KindIn, wire.KindAppend, wire.KindClose, wire.KindCommitted, wire.KindAppended,
		wire.KindSealed, wire.KindCheckpoint, wire.KindAlert, wire.KindDLQ}
	for _, subj := range []string{CheckpointSubject} {
		for _, k := range kinds {
			if s, ok := wire.StreamOf(k, subj); ok {
				t.Errorf("%s is the %s subject of stream %q", subj, k, s)
			}
		}
	}
}
