package controller

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Issue 15, item 11: one permanent error joined with transient ones does
// not stop the retries the transient ones need.
func TestIsPermanentOnlyWhenEveryErrorIs(t *testing.T) {
	p, transient := Permanent(errors.New("invalid spec")), errors.New("connection refused")
	assert.True(t, IsPermanent(p))
	assert.True(t, IsPermanent(fmt.Errorf("create: %w", p)))
	assert.True(t, IsPermanent(errors.Join(p, nil, Permanent(errors.New("also invalid")))))
	assert.False(t, IsPermanent(errors.Join(p, transient)))
	assert.False(t, IsPermanent(transient))
	assert.False(t, IsPermanent(nil))
}
