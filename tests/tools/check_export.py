"""Reads an Attune export as the researchers' tools would and prints what it found as JSON.

    python check_export.py EXPORT_DIR REFI_QDA_PROJECT_XSD

- attune.qdpx: project.qde validated against the REFI-QDA Project.xsd (xmlschema); every
  internal:// source present in the zip; each text selection's text, with its codes' names;
  the cases and their variables; the audio sources and their selections.
- interviews/*.docx: the paragraphs with their style names (python-docx).
- elan/*.eaf: the media, tiers and aligned annotations (pympi, ELAN's format library).

Exits non-zero (with the reason) when a file does not open or is not valid.
"""

import glob
import json
import os
import sys
import zipfile

import docx
import pympi
import xmlschema

NS = {"q": "urn:QDA-XML:project:1.0"}


def check_qdpx(path, xsd):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        qde = z.read("project.qde")
        schema = xmlschema.XMLSchema(xsd)
        schema.validate(qde.decode("utf-8"))
        from xml.etree import ElementTree as ET

        root = ET.fromstring(qde)
        codes = {c.get("guid"): c.get("name") for c in root.iter("{urn:QDA-XML:project:1.0}Code")}
        texts = []
        for source in root.iter("{urn:QDA-XML:project:1.0}TextSource"):
            plain = source.get("plainTextPath")
            assert plain.startswith("internal://"), plain
            member = "sources/" + plain[len("internal://"):]
            assert member in names, f"{member} missing from the zip"
            text = z.read(member).decode("utf-8")
            selections = []
            for sel in source.findall("q:PlainTextSelection", NS):
                start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
                assert 0 <= start <= end <= len(text), (start, end, len(text))
                selections.append(
                    {
                        "text": text[start:end],
                        "codes": [codes[c.find("q:CodeRef", NS).get("targetGUID")] for c in sel.findall("q:Coding", NS)],
                    }
                )
            texts.append({"name": source.get("name"), "text": text, "selections": selections})
        audio = []
        for source in root.iter("{urn:QDA-XML:project:1.0}AudioSource"):
            audio.append(
                {
                    "name": source.get("name"),
                    "path": source.get("path"),
                    "selections": [
                        {"begin": int(s.get("begin")), "end": int(s.get("end")), "name": s.get("name")}
                        for s in source.findall("q:AudioSelection", NS)
                    ],
                    "sync_points": len(source.findall("q:Transcript/q:SyncPoint", NS)),
                }
            )
        pictures = []
        for source in root.iter("{urn:QDA-XML:project:1.0}PictureSource"):
            member = "sources/" + source.get("path")[len("internal://"):]
            assert member in names, f"{member} missing from the zip"
            assert z.read(member).startswith(b"\x89PNG"), member
            pictures.append(source.get("name"))
        variables = {v.get("guid"): v.get("name") for v in root.iter("{urn:QDA-XML:project:1.0}Variable")}
        cases = []
        for case in root.iter("{urn:QDA-XML:project:1.0}Case"):
            values = {}
            for value in case.findall("q:VariableValue", NS):
                name = variables[value.find("q:VariableRef", NS).get("targetGUID")]
                values[name] = [child.text for child in value if not child.tag.endswith("VariableRef")][0]
            cases.append({"name": case.get("name"), "variables": values, "sources": len(case.findall("q:SourceRef", NS))})
        return {
            "valid": True,
            "base_path": root.get("basePath"),
            "codes": sorted(set(codes.values())),
            "texts": texts,
            "audio": audio,
            "pictures": pictures,
            "cases": cases,
        }


def check_docx(path):
    document = docx.Document(path)
    return [{"style": p.style.name, "text": p.text} for p in document.paragraphs]


def check_eaf(path):
    eaf = pympi.Elan.Eaf(path)
    tiers = {}
    for tier in eaf.get_tier_names():
        tiers[tier] = [list(a[:3]) for a in eaf.get_annotation_data_for_tier(tier)]
    return {"media": eaf.get_linked_files(), "tiers": tiers}


def main():
    export, xsd = sys.argv[1], sys.argv[2]
    result = {"qdpx": check_qdpx(os.path.join(export, "attune.qdpx"), xsd), "docx": {}, "eaf": {}}
    for path in sorted(glob.glob(os.path.join(export, "interviews", "*.docx"))):
        result["docx"][os.path.basename(path)] = check_docx(path)
    for path in sorted(glob.glob(os.path.join(export, "elan", "*.eaf"))):
        result["eaf"][os.path.basename(path)] = check_eaf(path)
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
