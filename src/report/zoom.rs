//! A long recording's spectrogram, page by page: one [`Tile`] image at a time under the
//! overview, with the notes of that page drawn over it by a small script from a compact list
//! of every note in the page (so the page stays small: one SVG element per note would take
//! about 500 bytes each, the list about 40).

use std::fmt::Write as _;

use super::page::{colour_bar, esc, Palette, Roll, BOTTOM, FIG_W, LEFT, RED, RIGHT, TOP};
use super::{Figures, Reference, Tile, TILE_SECONDS};

/// The overview's mark of the page shown below it (the script moves it).
pub(super) fn window_mark(svg: &mut String, roll: &Roll, first: &Tile) {
    let x = |t: f64| LEFT + roll.pw * (t / roll.duration.max(1e-9)).clamp(0.0, 1.0);
    let _ = write!(
        svg,
        "<rect id=\"zoom-window\" x=\"{:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"#ffeb3b\" fill-opacity=\".12\" stroke=\"#f9a825\" stroke-width=\"2\"/>",
        x(first.start),
        x(first.end) - x(first.start),
        roll.ph()
    );
}

/// The page figure: its controls, the SVG the script fills, the notes' list and the script.
pub(super) fn zoom_figure(
    f: &Figures,
    reference: Option<&Reference>,
    roll: &Roll,
    palette: &Palette,
) -> String {
    let ph = roll.ph();
    let first = &f.tiles[0];
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<div class=\"zoom-controls\"><button id=\"zoom-prev\" type=\"button\">◀</button> \
         <span id=\"zoom-label\"></span> <button id=\"zoom-next\" type=\"button\">▶</button></div>\
         <svg id=\"spectrogram\" viewBox=\"0 0 {FIG_W} {:.1}\" role=\"img\">\
         <image id=\"zoom-image\" href=\"{}\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{ph:.1}\" preserveAspectRatio=\"none\"/>",
        TOP + ph + BOTTOM,
        esc(&first.file),
        roll.pw * (first.end - first.start) / TILE_SECONDS,
    );
    roll.pitch_axis(&mut svg);
    let _ = write!(
        svg,
        "<g id=\"zoom-notes\"></g><g id=\"zoom-axis\"></g>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (s)</text>",
        LEFT + roll.pw / 2.0,
        TOP + ph + 34.0
    );
    colour_bar(
        &mut svg,
        "g-zoom",
        FIG_W - RIGHT + 8.0,
        TOP,
        ph,
        f.spectrogram_max,
        &f.magnitude_label,
    );
    svg.push_str("</svg>");
    let data = notes_data(f, reference, roll, palette);
    format!("{svg}<script type=\"application/json\" id=\"zoom-data\">{data}</script>{ZOOM_SCRIPT}")
}

/// The page figure's data as JSON: geometry, pages, colours, and every note as a short array
/// (times in seconds to the millisecond).
fn notes_data(
    f: &Figures,
    reference: Option<&Reference>,
    roll: &Roll,
    palette: &Palette,
) -> String {
    let instruments = &palette.0;
    let inst = |label: &str| instruments.iter().position(|x| x == label).unwrap_or(0);
    let mut js = String::with_capacity(64 * (f.score.notes.len() + 16));
    let _ = write!(
        js,
        "{{\"left\":{LEFT},\"top\":{TOP},\"pw\":{:.1},\"row\":{:.3},\"low\":{},\"high\":{},\"figw\":{FIG_W},\"span\":{TILE_SECONDS},\
         \"duration\":{:.3},\"red\":\"{RED}\",\"colours\":[{}],\"instruments\":[{}],\"tiles\":[{}],",
        roll.pw,
        roll.row,
        roll.low,
        roll.top,
        f.duration,
        instruments
            .iter()
            .map(|i| format!("\"{}\"", palette.colour(i)))
            .collect::<Vec<_>>()
            .join(","),
        instruments
            .iter()
            .map(|i| json_string(i))
            .collect::<Vec<_>>()
            .join(","),
        f.tiles
            .iter()
            .map(|t| format!(
                "{{\"file\":{},\"start\":{:.3},\"end\":{:.3}}}",
                json_string(&t.file),
                t.start,
                t.end
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let list = |items: Vec<String>| items.join(",");
    let score: Vec<String> = f
        .score
        .notes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let bar = n.measure.as_deref().map_or("null".into(), json_string);
            format!(
                "[{:.3},{:.3},{},{},{i},{bar}]",
                n.onset,
                n.end(),
                n.pitch,
                inst(&n.instrument)
            )
        })
        .collect();
    let played: Vec<String> = f
        .transcription
        .events
        .iter()
        .map(|e| {
            format!(
                "[{:.3},{:.3},{},{},{:.0},{},{:.2}]",
                e.onset,
                e.offset,
                e.pitch,
                inst(&e.instrument),
                1000.0 * e.onset_shift,
                e.velocity,
                e.confidence
            )
        })
        .collect();
    let unplayed: Vec<String> = f
        .transcription
        .not_played
        .iter()
        .map(|u| {
            let n = &f.score.notes[u.score_note];
            format!(
                "[{:.3},{:.3},{},{},{:.2}]",
                u.score_onset,
                u.score_onset + n.duration,
                u.pitch,
                inst(&u.instrument),
                u.confidence
            )
        })
        .collect();
    let marks = |notes: &[crate::io::score::Note]| -> Vec<String> {
        notes
            .iter()
            .map(|n| format!("[{:.3},{:.3},{}]", n.onset, n.end(), n.pitch))
            .collect()
    };
    let (missed, wrong) =
        reference.map_or((vec![], vec![]), |r| (marks(&r.missed), marks(&r.wrong)));
    let _ = write!(
        js,
        "\"score\":[{}],\"played\":[{}],\"unplayed\":[{}],\"missed\":[{}],\"wrong\":[{}]}}",
        list(score),
        list(played),
        list(unplayed),
        list(missed),
        list(wrong)
    );
    // Inside a <script> element only "</" could end it early.
    js.replace("</", "<\\/")
}

/// `s` as a JSON string.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Draws the page `k` of the spectrogram: its image, the notes that overlap it (as the
/// one-figure page draws them, with the same hover texts), its time axis, and the overview's
/// mark; ◀ ▶, the arrow keys and a click on the overview turn the page.
const ZOOM_SCRIPT: &str = "<script>\n\
(function(){var d=JSON.parse(document.getElementById('zoom-data').textContent);\n\
var NS='http://www.w3.org/2000/svg',img=document.getElementById('zoom-image'),g=document.getElementById('zoom-notes'),\n\
ax=document.getElementById('zoom-axis'),label=document.getElementById('zoom-label'),win=document.getElementById('zoom-window'),\n\
ov=document.getElementById('overview'),k=0;\n\
var NAMES=['C','C#','D','D#','E','F','F#','G','G#','A','A#','B'];\n\
function name(p){return NAMES[p%12]+(Math.floor(p/12)-1);}\n\
function el(tag,attrs,text){var e=document.createElementNS(NS,tag);for(var a in attrs)e.setAttribute(a,attrs[a]);if(text!==undefined)e.textContent=text;return e;}\n\
function box(cls,style,t0,t1,p,title,t){if(t1<t.start||t0>t.end||p<d.low||p>d.high)return;\n\
var a=Math.max(t0,t.start),b=Math.min(t1,t.end),x0=d.left+d.pw*(a-t.start)/d.span,x1=d.left+d.pw*(b-t.start)/d.span;\n\
var r=el('rect',{'class':cls,style:style,x:x0.toFixed(2),y:(d.top+(d.high-p)*d.row).toFixed(2),width:Math.max(1,x1-x0).toFixed(2),height:d.row});\n\
r.appendChild(el('title',{},title));g.appendChild(r);}\n\
function f3(x){return x.toFixed(3);}\n\
function show(i){k=Math.max(0,Math.min(d.tiles.length-1,i));var t=d.tiles[k];\n\
img.setAttribute('href',t.file);img.setAttribute('width',(d.pw*(t.end-t.start)/d.span).toFixed(1));\n\
while(g.firstChild)g.removeChild(g.firstChild);while(ax.firstChild)ax.removeChild(ax.firstChild);\n\
d.score.forEach(function(n){box('score','',n[0],n[1],n[2],'score note '+n[4]+': '+name(n[2])+' '+d.instruments[n[3]]+' at '+f3(n[0])+' s'+(n[5]!==null?', bar '+n[5]:''),t);});\n\
d.played.forEach(function(n){var c=d.colours[n[3]];box('played','fill:'+c+';stroke:'+c,n[0],n[1],n[2],name(n[2])+' '+d.instruments[n[3]]+': played '+f3(n[0])+'–'+f3(n[1])+' s, shift '+(n[4]>=0?'+':'')+n[4]+' ms, velocity '+n[5]+', confidence '+n[6].toFixed(2),t);});\n\
d.unplayed.forEach(function(n){box('unplayed','fill:'+d.red+';stroke:'+d.red,n[0],n[1],n[2],'NOT PLAYED: '+name(n[2])+' '+d.instruments[n[3]]+' at score '+f3(n[0])+' s (confidence '+n[4].toFixed(2)+')',t);});\n\
d.missed.forEach(function(n){box('missed','',n[0],n[1],n[2],'MISSED reference note: '+name(n[2])+' at '+f3(n[0])+'–'+f3(n[1])+' s',t);});\n\
d.wrong.forEach(function(n){box('wrong','',n[0],n[1],n[2],'WRONG: no reference note: '+name(n[2])+' at '+f3(n[0])+'–'+f3(n[1])+' s',t);});\n\
var y=parseFloat(img.getAttribute('y'))+parseFloat(img.getAttribute('height'));\n\
for(var s=Math.ceil(t.start/5)*5;s<=t.end+1e-9;s+=5){var x=d.left+d.pw*(s-t.start)/d.span;\n\
ax.appendChild(el('line',{'class':'tick',x1:x.toFixed(1),y1:y,x2:x.toFixed(1),y2:y+5}));\n\
ax.appendChild(el('text',{x:x.toFixed(1),y:y+18,'text-anchor':'middle'},String(s)));}\n\
label.textContent=Math.round(t.start)+'–'+Math.round(t.end)+' s of '+Math.round(d.duration)+' s (page '+(k+1)+' of '+d.tiles.length+')';\n\
var w=function(s){return d.left+d.pw*Math.min(1,Math.max(0,s/d.duration));};\n\
win.setAttribute('x',w(t.start).toFixed(2));win.setAttribute('width',(w(t.end)-w(t.start)).toFixed(2));}\n\
document.getElementById('zoom-prev').addEventListener('click',function(){show(k-1);});\n\
document.getElementById('zoom-next').addEventListener('click',function(){show(k+1);});\n\
document.addEventListener('keydown',function(e){if(e.key==='ArrowLeft')show(k-1);if(e.key==='ArrowRight')show(k+1);});\n\
ov.addEventListener('click',function(e){var b=ov.getBoundingClientRect(),u=(e.clientX-b.left)/b.width*d.figw;\n\
show(Math.floor(((u-d.left)/d.pw)*d.duration/d.span));});\n\
show(0);})();\n\
</script>\n";
