import { describe, expect, it } from 'vitest'
import { maskUrl, normalizePath } from '@apimeter/core/inbound'

describe('normalizePath()', () => {
  it.each([
    ['/', '/'],
    ['', '/'],
    ['/v1/chat/completions', '/v1/chat/completions'],
    ['/users/42', '/users/:id'],
    ['/users/42/', '/users/:id'],
    ['//users//42', '/users/:id'],
    ['/orders/9f1c2d3e-0000-4000-8000-00000000abcd', '/orders/:id'],
    ['/commits/3b18e512dba79e4c8300dd08aeb37f8e728b8dad', '/commits/:id'],
    ['/objects/5f2b8c9d0e1a2b3c4d5e6f70', '/objects/:id'],
    ['/customers/cus_9s6XKzkNRiz8i3', '/customers/:id'],
    ['/tokens/eyJhbGciOiJIUzI1NiJ9abc123', '/tokens/:secret'], // a random-looking token: a secret, not an id
    ['/reports/2026-01-15', '/reports/:id'],
    ['/people/jane@example.com', '/people/:id'],
    ['/images/123.png', '/images/:id'],
    ['/api/v1/quote?symbol=AAPL', '/api/v1/quote'],
    ['/a#frag', '/a'],
    ['/models/gpt-4o-mini', '/models/gpt-4o-mini'],
    ['/a/b/c/d/e/f/g/h/i/j/k/l/m/n', '/a/b/c/d/e/f/g/h/i/j/k/l/…'],
  ])('%s → %s', (path, route) => {
    expect(normalizePath(path)).toBe(route)
  })
})

describe('maskUrl()', () => {
  it.each([
    ['https://api.example.com/q?symbol=AAPL&token=abc', 'https://api.example.com/q?symbol=AAPL&token=***'],
    ['https://user:pass@api.example.com/x', 'https://api.example.com/x'],
    ['/cb?code=xyz&state=1', '/cb?code=***&state=1'],
    ['/x?apiKey=1&api_key=2&client_secret=3&password=4&sig=5&page=2', '/x?apiKey=***&api_key=***&client_secret=***&password=***&sig=***&page=2'],
    ['/plain', '/plain'],
  ])('%s → %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked)
  })
})
