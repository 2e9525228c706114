// konva.min.js (UMD, loaded by a classic <script>) sets window.Konva; dwv imports "konva".
export default window.Konva;
