// magic-wand.min.js sets window.MagicWand; dwv imports "magic-wand-tool".
export default window.MagicWand;
