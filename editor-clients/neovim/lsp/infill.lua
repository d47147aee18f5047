-- The "infill" config for vim.lsp.config / vim.lsp.enable, built from the plugin's options
-- (defaults, or what `require("infill").setup()` set). Read lazily, when a buffer opens.
return require('infill.lsp').config()
