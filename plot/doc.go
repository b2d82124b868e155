// Package plot draws dpsflow's figures, as images and as interactive HTML.
//
// Images are float32 in [-1, 1]; ImageOf turns one CHW image into an 8-bit gray (C = 1) or
// RGB (C = 3) image.Image, clipping, and Grid lays out a whole NCHW batch tensor. Figures
// made with gonum/plot (drawn on a vgimg canvas, returned as image.Image; SavePNG writes
// one atomically):
//
//	ComparisonGrid   one column per Panel ("measurement", "DPS", "truth"), titled, one row
//	                 per image, optional row labels (ComparisonGridWith), images enlarged by
//	                 an integer scale with nearest-neighbour sampling, pixels copied exactly
//	Snapshots        a sampler's evolution: one column per Frame titled "step N", x_t above
//	                 the Tweedie estimate x̂0
//	CurvesPNG        metric curves (one line and legend entry per Series, optional log y)
//	                 written to a PNG file atomically
//
// CurvesHTML draws the same curves as an interactive go-echarts line chart (tooltip,
// legend, zoom). The Apache ECharts script (npm echarts@5.6.0, dist/echarts.min.js,
// Apache-2.0, see assets/ECHARTS-LICENSE and assets/ECHARTS-NOTICE) is embedded in this
// package and never loaded from a CDN: Inline puts it into the page (self-contained, for
// Jupyter), Dir(rel) makes the page load rel/echarts.min.js, which WriteAssets copies.
//
// Upscale enlarges any image with nearest-neighbour sampling.
package plot
