package securelog_test

import (
	"context"
	"fmt"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// A Log writes; a Reader over the same store (any store.ReadStore, for
// example a remote store over the log's RPC) proves and verifies without
// the writer's machinery.
func ExampleReader() {
	ctx := context.Background()
	st := memory.New()
	if err := st.Init(ctx, "example"); err != nil {
		panic(err)
	}
	l := securelog.New(st, securelog.Options{})
	if err := l.OpenInitialized(ctx); err != nil {
		panic(err)
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		if _, err := l.Append(ctx, "default", "user.login", wire.Info, "authd", []byte(user)); err != nil {
			panic(err)
		}
	}
	seg, err := l.CloseSegment(ctx, "default")
	if err != nil {
		panic(err)
	}

	r := securelog.NewReader(st, securelog.ReaderOptions{})
	proof, err := r.BuildInclusionProof(ctx, 2)
	if err != nil {
		panic(err)
	}
	fmt.Printf("seqno %d is leaf %d of %d in segment %d\n", proof.Seqno, proof.LeafIndex, proof.TreeSize, proof.SegmentID)
	fmt.Println("proof verifies:", securelog.VerifyInclusionProof(proof, seg.MerkleRoot) == nil)
	fmt.Println("chain verifies:", r.VerifyChain(ctx, "default", 1, 3) == nil)
	// Output:
	// seqno 2 is leaf 1 of 3 in segment 1
	// proof verifies: true
	// chain verifies: true
}
