package activities

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// Every error type the activities declare is in the one table that says whether it is retried,
// and newError marks the error accordingly: the workflows' retry policies list no types.
func TestEveryErrorTypeIsInTheTaxonomy(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	require.NoError(t, err)
	declared := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for i, name := range spec.(*ast.ValueSpec).Names {
				if !strings.HasPrefix(name.Name, "ErrType") {
					continue
				}
				v, err := strconv.Unquote(spec.(*ast.ValueSpec).Values[i].(*ast.BasicLit).Value)
				require.NoError(t, err)
				declared[v] = true
			}
		}
	}
	require.Len(t, errorTypes, len(declared), "every ErrType constant has a row in errorTypes, and no row is left over")
	for typ := range declared {
		_, ok := errorTypes[typ]
		require.True(t, ok, "%s has no row in errorTypes", typ)
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(newError(typ, "x", nil), &appErr))
		require.Equal(t, typ, appErr.Type())
		require.Equal(t, !Retryable(typ), appErr.NonRetryable(), typ)
	}
	// The ones the workflows rely on.
	for _, typ := range []string{ErrTypeDeclined, ErrTypeUnknownOutcome, ErrTypeNotExecuted, ErrTypeInvalidRequest,
		ErrTypeAccountUnusable, ErrTypeStateConflict, ErrTypeRefundRefused, ErrTypeNameMismatch, ErrTypeCreditExecuted,
		ErrTypeNotPending} {
		require.False(t, Retryable(typ), typ)
	}
	require.True(t, Retryable(ErrTypeInProgress), "the registration polls through retries")
	require.True(t, Retryable(ErrTypeStillSendable))
	require.True(t, Retryable("some plain failure"), "an error outside the taxonomy is retried")
}
