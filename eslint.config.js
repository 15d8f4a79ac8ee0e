import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.local/**', 'deploy/local/.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          // Any interpolating template inside a query/command call that is not the sql`` tag.
          selector:
            'CallExpression[callee.property.name=/^(query|command|exec)$/] TemplateLiteral[expressions.length>0]:not(TaggedTemplateExpression > TemplateLiteral)',
          message:
            'Build SQL through the literal encoder in @mcp-audit/clickhouse (sql`...`), never a raw template.',
        },
      ],
    },
  },
);
