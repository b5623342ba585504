package memory_test

import (
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "memory",
		New:  func(t *testing.T) (store.Store, string) { return memory.New(), t.Name() },
	})
}
