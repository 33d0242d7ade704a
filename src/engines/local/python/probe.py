"""Lists the Python packages a data analyst expects, with their versions (null when missing), as JSON.

Run by the local engine at start-up, inside a real sandbox, so that `help` and the model's instructions
name what is really there. Nothing is imported: only found and looked up.
"""

import importlib.metadata
import importlib.util
import json
import sys

# import name -> distribution name
PACKAGES = {
    'numpy': 'numpy', 'pandas': 'pandas', 'matplotlib': 'matplotlib', 'scipy': 'scipy', 'sympy': 'sympy',
    'statsmodels': 'statsmodels', 'sklearn': 'scikit-learn', 'seaborn': 'seaborn', 'networkx': 'networkx',
    'openpyxl': 'openpyxl', 'xlrd': 'xlrd', 'xlsxwriter': 'XlsxWriter', 'odf': 'odfpy', 'docx': 'python-docx',
    'pptx': 'python-pptx', 'pypdf': 'pypdf', 'PIL': 'Pillow', 'bs4': 'beautifulsoup4', 'lxml': 'lxml',
    'tabulate': 'tabulate',
}


def version(module, dist):
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ''


print(json.dumps({'python': sys.version.split()[0], 'packages': {dist: version(module, dist) for module, dist in PACKAGES.items()}}))
