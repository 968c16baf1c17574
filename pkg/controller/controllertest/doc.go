// Package controllertest holds what the controllers' unit tests share: a
// Base on fake clientsets whose caches the test fills, a Dask scheduler the
// test scripts, and helpers that read what the controller did.
package controllertest
