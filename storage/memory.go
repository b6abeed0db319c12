package storage

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Memory is an in-process Store. Values are shared, not copied: Put keeps the
// caller's slice and Get returns it, so serving a segment costs no copy.
type Memory struct {
	mu   sync.RWMutex
	objs map[string]Object
}

// InProcess reports that the objects live and die with this process, so a
// caller that already holds them in memory need not store a second copy.
func (m *Memory) InProcess() bool { return true }

// NewMemory returns an empty memory store.
func NewMemory() *Memory { return &Memory{objs: make(map[string]Object)} }

// Put keeps obj as it is, Data not copied.
func (m *Memory) Put(_ context.Context, key string, obj Object) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	m.objs[key] = obj
	m.mu.Unlock()
	return nil
}

// Get returns the Object stored under key, Data shared with every caller.
func (m *Memory) Get(_ context.Context, key string) (Object, error) {
	// Checked like every backend, so that callers see ErrInvalidKey, not
	// ErrNotFound, whatever the store.
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	m.mu.RLock()
	obj, ok := m.objs[key]
	m.mu.RUnlock()
	if !ok {
		return Object{}, ErrNotFound
	}
	return obj, nil
}

// Delete forgets key.
func (m *Memory) Delete(_ context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; !ok {
		return ErrNotFound
	}
	delete(m.objs, key)
	return nil
}

// Keys lists the stored keys below prefix, sorted.
func (m *Memory) Keys(_ context.Context, prefix string) ([]string, error) {
	m.mu.RLock()
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	sort.Strings(keys)
	return keys, nil
}
