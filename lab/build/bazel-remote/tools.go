//go:build tools

// Package tools pins bazel-remote's main package so `go build` can build it from the module cache.
package tools

import _ "github.com/buchgr/bazel-remote/v2"
