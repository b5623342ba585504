package wire

// Subjects of the C2SP transparency view (package tlog). They live under
// securelog.tlog., which is no per-stream kind (securelog.<kind>.<stream>):
// no stream name can make a pipeline subject equal to one of them. Never
// add a per-stream kind named "tlog".
//
//	securelog.tlog.checkpoint  each new C2SP checkpoint (a signed note,
//	                           cosigned when tlog-witnesses are configured)
const (
	// TlogCheckpointSubject announces each new C2SP checkpoint note. It
	// replaces securelog.checkpoint.log, which was also the v1 checkpoint
	// subject of a stream named "log".
	TlogCheckpointSubject = "securelog.tlog.checkpoint"
)
